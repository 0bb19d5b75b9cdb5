/** The guard's pure parts: header reading, limits parsing, login slow-down, retained bookkeeping, wire bytes. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { authorizeClientId, authorizePublish, authorizeSubscribe } from '../../../src/broker/acl.js';
import { createGate, readConnectHeader } from '../../../src/broker/guard/gate.js';
import { DEFAULT_LIMITS, parseLimit } from '../../../src/broker/guard/limits.js';
import { createLoginGuard } from '../../../src/broker/guard/logins.js';
import { createRetainedIndex, retainedOwner } from '../../../src/broker/guard/retained.js';
import { publishAck, refusedConnack } from '../../../src/broker/guard/wire.js';
import { certificateWarning } from '../../../src/broker/tls.js';

describe('readConnectHeader', () => {
  it('waits for the whole Remaining Length, then admits a CONNECT within the bound', () => {
    expect(readConnectHeader(Buffer.from([0x10]), 100)).toEqual({ kind: 'more' });
    expect(readConnectHeader(Buffer.from([0x10, 0x80]), 1000)).toEqual({ kind: 'more' });
    expect(readConnectHeader(Buffer.from([0x10, 0x7f]), 1000)).toEqual({ kind: 'ok', remaining: 127 });
  });
  it('refuses a 268,435,455-byte CONNECT, a first packet that is not CONNECT and a 5-byte length', () => {
    const huge = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]);
    expect(readConnectHeader(huge, 65536)).toMatchObject({
      kind: 'refuse',
      reason: expect.stringContaining('268435455'),
    });
    expect(readConnectHeader(Buffer.from([0x30, 0]), 65536)).toMatchObject({ kind: 'refuse' });
    expect(readConnectHeader(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 1]), 1 << 30)).toMatchObject({
      kind: 'refuse',
    });
  });
});

describe('parseLimit', () => {
  it('takes name=value for known limits and says what is wrong otherwise', () => {
    expect(parseLimit('packet-bytes=2048')).toEqual({ key: 'packetBytes', value: 2048 });
    expect(parseLimit('nope=1')).toMatchObject({ problem: expect.stringContaining('unknown limit "nope"') });
    expect(parseLimit('packet-bytes=1')).toMatchObject({ problem: expect.stringContaining('at least 1024') });
    expect(parseLimit('packet-bytes')).toMatchObject({ problem: expect.stringContaining('whole number') });
    expect(DEFAULT_LIMITS.connectBytes).toBe(65536);
  });
});

describe('login guard', () => {
  it('delays a source after its failures, doubling, and logs once per window', async () => {
    let t = 0;
    const slept: number[] = [];
    const reports: Array<[string, number]> = [];
    const guard = createLoginGuard({
      failures: 2,
      delayMaxMs: 1000,
      windowMs: 60_000,
      now: () => t,
      sleep: async (ms) => {
        slept.push(ms);
      },
      report: (source, _reason, count) => reports.push([source, count]),
    });
    for (let i = 0; i < 6; i++) {
      await guard.turn('10.0.0.9', async () => false);
      guard.failed('10.0.0.9', 'bad password');
    }
    expect(slept).toEqual([250, 500, 1000, 1000]);
    expect(guard.delayFor('10.0.0.7')).toBe(0);
    expect(reports).toEqual([['10.0.0.9', 1]]);
    t = 61_000;
    guard.failed('10.0.0.9', 'bad password');
    expect(reports).toEqual([
      ['10.0.0.9', 1],
      ['10.0.0.9', 6],
    ]);
    guard.succeeded('10.0.0.9');
    expect(guard.delayFor('10.0.0.9')).toBe(0);
  });
  it('runs one check at a time per source, and refuses past the queue bound', async () => {
    const guard = createLoginGuard({ failures: 5, delayMaxMs: 0, windowMs: 60_000 });
    let running = 0;
    let peak = 0;
    const gate: Array<() => void> = [];
    const check = () =>
      new Promise<boolean>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        gate.push(() => {
          running--;
          resolve(true);
        });
      });
    const turns = Array.from({ length: 70 }, () => guard.turn('a', check));
    const other = guard.turn('b', async () => 'b');
    expect(await other).toBe('b');
    expect(await Promise.all(turns.slice(64))).toEqual(Array(6).fill('busy'));
    let settled = 0;
    for (const t of turns.slice(0, 64)) void t.then(() => settled++);
    while (settled < 64) {
      await new Promise((r) => setImmediate(r));
      gate.shift()?.();
    }
    expect(await Promise.all(turns.slice(0, 64))).toEqual(Array(64).fill(true));
    expect(peak).toBe(1);
  });
});

describe('retained index', () => {
  it('counts topics and bytes per agent root, frees on an empty payload, refuses past the quota', () => {
    expect(retainedOwner('replug/pi-a/status')).toBe('pi-a');
    expect(retainedOwner('homeassistant/device/replug-pi-a/config')).toBe('pi-a');
    expect(retainedOwner('other/x')).toBe('');
    const index = createRetainedIndex({ topics: 2, bytes: 1000 });
    expect(index.admit('replug/a/1', 10).allow).toBe(true);
    expect(index.admit('replug/a/2', 10).allow).toBe(true);
    expect(index.admit('replug/a/2', 20).allow).toBe(true);
    const refused = index.admit('replug/a/3', 10);
    expect(refused).toMatchObject({ allow: false, reason: expect.stringContaining('retained-topics 2') });
    expect(index.admit('replug/b/1', 10).allow).toBe(true);
    expect(index.admit('replug/a/1', 0).allow).toBe(true);
    expect(index.admit('replug/a/3', 10).allow).toBe(true);
    expect(index.admit('replug/b/2', 2000)).toMatchObject({
      allow: false,
      reason: expect.stringContaining('retained-bytes'),
    });
    expect(index.usage('a')).toEqual({ topics: 2, bytes: 2 * 'replug/a/x'.length + 30 });
  });
});

describe('ACL additions', () => {
  it('reserves replug-<id> for agent <id>, leaves other ids free', () => {
    const isAgent = (id: string) => id === 'pi-a';
    const observer = { kind: 'user', username: 'ha', role: 'observer' } as const;
    expect(
      authorizeClientId({ kind: 'user', username: 'pi-a', role: 'agent' }, 'replug-pi-a', isAgent).allow,
    ).toBe(true);
    expect(authorizeClientId(observer, 'replug-pi-a', isAgent)).toEqual({
      allow: false,
      reason: 'client id replug-pi-a belongs to agent pi-a; observer ha may not use it',
    });
    expect(authorizeClientId({ kind: 'anonymous' }, 'replug-pi-a', isAgent).allow).toBe(false);
    expect(authorizeClientId(observer, 'replug-watch-1a2b', isAgent).allow).toBe(true);
  });
  it('anonymous clients of a broker with users read like observers and write nothing; U+0000 is refused', () => {
    const anon = { kind: 'anonymous', observer: true } as const;
    expect(authorizePublish(anon, 'replug/pi/status')).toMatchObject({ allow: false });
    expect(authorizeSubscribe(anon, 'replug/#').allow).toBe(true);
    expect(authorizePublish({ kind: 'anonymous' }, 'replug/pi\u0000/status')).toMatchObject({
      allow: false,
      reason: expect.stringContaining('U+0000'),
    });
    expect(authorizeSubscribe({ kind: 'anonymous' }, 'a/\u0000')).toMatchObject({ allow: false });
  });
});

describe('wire', () => {
  it('encodes a v5 CONNACK with a Reason String, a v3 CONNACK and a v5 PUBACK 0x97', () => {
    expect([...refusedConnack(4, 5, 0x87)]).toEqual([0x20, 2, 0, 5]);
    expect([...refusedConnack(5, 5, 0x87, 'ab')]).toEqual([0x20, 8, 0, 0x87, 5, 0x1f, 0, 2, 0x61, 0x62]);
    expect([...publishAck(1, 0x0102, 0x97)]).toEqual([0x40, 4, 1, 2, 0x97, 0]);
  });
});

describe('certificateWarning', () => {
  it('says when a certificate has expired, is not valid yet or is close to its end', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-cert-'));
    try {
      const cert = path.join(dir, 'c.pem');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          path.join(dir, 'k.pem'),
          '-out',
          cert,
          '-subj',
          '/CN=t',
          '-days',
          '30',
        ],
        { stdio: 'ignore' },
      );
      const pem = readFileSync(cert);
      const day = 86_400_000;
      expect(certificateWarning(pem, new Date())).toBeUndefined();
      expect(certificateWarning(pem, new Date(Date.now() + 20 * day))).toMatch(/^expires in \d+ days/);
      expect(certificateWarning(pem, new Date(Date.now() + 31 * day))).toMatch(
        /^expired on .*clients will refuse it/,
      );
      expect(certificateWarning(pem, new Date(Date.now() - 2 * day))).toMatch(/^is not valid yet/);
      expect(certificateWarning('junk')).toMatch(/^cannot be parsed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('replug broker --limit', () => {
  it('parses repeated --limit flags and the variable into broker options', async () => {
    const { parseBrokerConfig } = await import('../../../src/commands/broker.js');
    const { config } = parseBrokerConfig(
      ['--limit', 'packet-bytes=4096', '--limit', 'connecting=8'],
      {},
      '/',
    );
    expect(config.broker.limits).toEqual({ packetBytes: 4096, connecting: 8 });
    const fromEnv = parseBrokerConfig([], { REPLUG_BROKER_LIMITS: 'retained-topics=50' }, '/');
    expect(fromEnv.config.broker.limits).toEqual({ retainedTopics: 50 });
    expect(() => parseBrokerConfig(['--limit', 'nope=1'], {}, '/')).toThrow(/unknown limit "nope"/);
  });
});

describe('the connecting gate', () => {
  // A PassThrough stands in for a socket: the gate reads, unshifts and destroys it like a net.Socket.
  const sock = () => new PassThrough();
  const CONNECT_HEAD = Buffer.from([0x10, 0x10]); // CONNECT, 16 bytes to follow

  it('past the bound it closes the oldest idle socket, not an older one whose CONNECT is being authenticated', async () => {
    const gate = createGate({ maxConnectBytes: 1024, maxConnecting: 2, connectTimeoutMs: 60_000 });
    const passed: PassThrough[] = [];
    const login = sock();
    gate.admit(login, (s) => passed.push(s as PassThrough));
    login.write(CONNECT_HEAD);
    await new Promise((r) => setImmediate(r));
    expect(passed).toEqual([login]); // handed to aedes, no CONNACK yet: still counts as connecting
    const idle1 = sock();
    gate.admit(idle1, () => {});
    const idle2 = sock(); // the bound (2) is reached: one must go
    gate.admit(idle2, () => {});
    expect(idle1.destroyed).toBe(true);
    expect(login.destroyed).toBe(false);
    expect(gate.refused.evicted).toBe(1);
    expect(gate.connecting).toBe(2);
    // With only logins in progress the oldest of them goes: the bound still holds.
    gate.settled(idle2);
    idle2.destroy();
    const login2 = sock();
    gate.admit(login2, () => {});
    login2.write(CONNECT_HEAD);
    await new Promise((r) => setImmediate(r));
    gate.admit(sock(), () => {});
    expect(login.destroyed).toBe(true);
    expect(login2.destroyed).toBe(false);
    expect(gate.connecting).toBe(2);
  });
});
