/**
 * startBroker against the reference clients (Debian's mosquitto_sub / mosquitto_pub): authentication,
 * ACL, the anonymous policy, protocol versions and the port-in-use error, all over real sockets.
 */
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { ErrorCodes, ReplugError } from '../../src/errors.js';
import {
  clientsAvailable,
  mosquittoPub,
  mosquittoSubOnce,
  startSubscriber,
} from '../helpers/mosquitto-clients.js';
import { memoryLogger, tempDir, usersFile } from './fixtures.js';

const haveClients = clientsAvailable('broker integration (test/broker/broker.test.ts)');

function conn(broker: RunningBroker, host = '127.0.0.1'): string[] {
  return ['-h', host, '-p', String(broker.address.port), '-V', 'mqttv311'];
}

describe.skipIf(!haveClients)('startBroker with mosquitto clients', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let users: string;
  beforeAll(async () => {
    tmp = await tempDir('replug-broker-');
    users = await usersFile(tmp.dir, [
      { username: 'a', role: 'agent', password: 'pw-a' },
      { username: 'b', role: 'agent', password: 'pw-b' },
      { username: 'dash', role: 'observer', password: 'pw-dash' },
    ]);
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('on loopback lets anonymous clients publish and subscribe (MQTT 3.1.1) and logs one listen line', async () => {
    const { log, lines } = await memoryLogger();
    const broker = await startBroker({ port: 0, log });
    try {
      expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.address.port}`);
      const sub = startSubscriber([...conn(broker), '-t', 'replug/#', '-v']);
      expect(await sub.subscribed()).toEqual([0]);
      const pub = await mosquittoPub([...conn(broker), '-t', 'replug/pi/status', '-m', '{"state":"online"}']);
      expect(pub.code).toBe(0);
      expect(await sub.waitForLines(1)).toEqual(['replug/pi/status {"state":"online"}']);
      await sub.stop();
      const listen = lines().filter((l) => String(l.msg).startsWith('broker listening'));
      expect(listen).toHaveLength(1);
      expect(listen[0]?.msg).toBe(
        `broker listening on mqtt://127.0.0.1:${broker.address.port} (anonymous allowed on loopback; no users file)`,
      );
    } finally {
      await broker.close();
    }
  });

  it('speaks MQTT 3.1, 3.1.1 and 5 (aedes 2)', async () => {
    const broker = await startBroker({ port: 0 });
    try {
      const base = ['-h', '127.0.0.1', '-p', String(broker.address.port), '-t', 'x', '-m', '1'];
      expect((await mosquittoPub([...base, '-V', 'mqttv31'])).code).toBe(0);
      expect((await mosquittoPub([...base, '-V', 'mqttv311'])).code).toBe(0);
      expect((await mosquittoPub([...base, '-V', 'mqttv5'])).code).toBe(0);
    } finally {
      await broker.close();
    }
  });

  it('refuses a bad password and an unknown user, accepts the right one', async () => {
    const broker = await startBroker({ port: 0, usersFile: users });
    try {
      const bad = await mosquittoSubOnce([
        ...conn(broker),
        '-u',
        'a',
        '-P',
        'wrong',
        '-t',
        'replug/a/#',
        '-W',
        '3',
      ]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/bad user name or password/i);
      const ghost = await mosquittoSubOnce([
        ...conn(broker),
        '-u',
        'ghost',
        '-P',
        'pw-a',
        '-t',
        'x',
        '-W',
        '3',
      ]);
      expect(ghost.stderr).toMatch(/bad user name or password/i);
      const good = await mosquittoPub([
        ...conn(broker),
        '-u',
        'a',
        '-P',
        'pw-a',
        '-t',
        'replug/a/x',
        '-m',
        '1',
      ]);
      expect(good).toMatchObject({ code: 0, stderr: '' });
    } finally {
      await broker.close();
    }
  });

  it('ACL: agent a cannot publish under replug/b/ while its own root works; observers cannot publish', async () => {
    const broker = await startBroker({ port: 0, usersFile: users });
    try {
      const observer = startSubscriber([
        ...conn(broker),
        '-u',
        'dash',
        '-P',
        'pw-dash',
        '-t',
        'replug/#',
        '-v',
      ]);
      expect(await observer.subscribed()).toEqual([0]);
      const auth = (u: string, p: string) => [...conn(broker), '-u', u, '-P', p, '-q', '1'];
      // Refused publishes first; a permitted one last acts as the barrier: once it arrived, anything the
      // broker had let through earlier would have arrived before it (same broker, sequential clients).
      await mosquittoPub([...auth('a', 'pw-a'), '-t', 'replug/b/status', '-m', 'forged']);
      await mosquittoPub([...auth('dash', 'pw-dash'), '-t', 'replug/dash/status', '-m', 'observer']);
      await mosquittoPub([...auth('a', 'pw-a'), '-t', 'homeassistant/status', '-m', 'online']);
      const ok = await mosquittoPub([...auth('a', 'pw-a'), '-t', 'replug/a/status', '-m', 'mine']);
      expect(ok.code).toBe(0);
      expect(await observer.waitForLines(1)).toEqual(['replug/a/status mine']);
      // Give a late forged message a chance to show up before the final assertion.
      await mosquittoPub([...auth('b', 'pw-b'), '-t', 'replug/b/status', '-m', 'real-b']);
      expect(await observer.waitForLines(2)).toEqual(['replug/a/status mine', 'replug/b/status real-b']);
      await observer.stop();
    } finally {
      await broker.close();
    }
  });

  it('ACL: an agent cannot plant a will under another agent (refused at CONNECT); its own will works', async () => {
    const broker = await startBroker({ port: 0, usersFile: users });
    try {
      const a = ['-u', 'a', '-P', 'pw-a'];
      const forged = await mosquittoPub([
        ...conn(broker),
        ...a,
        '--will-topic',
        'replug/b/status',
        '--will-payload',
        'offline',
        '-t',
        'replug/a/x',
        '-m',
        '1',
      ]);
      expect(forged.code).not.toBe(0);
      expect(forged.stderr).toMatch(/not authori[sz]ed/i);
      const own = await mosquittoPub([
        ...conn(broker),
        ...a,
        '--will-topic',
        'replug/a/status',
        '--will-payload',
        'offline',
        '-t',
        'replug/a/x',
        '-m',
        '1',
      ]);
      expect(own).toMatchObject({ code: 0, stderr: '' });
    } finally {
      await broker.close();
    }
  });

  it('ACL: an agent subscribing beyond its root gets SUBACK 0x80 for that filter only', async () => {
    const broker = await startBroker({ port: 0, usersFile: users });
    try {
      const sub = startSubscriber([
        ...conn(broker),
        ...['-u', 'a', '-P', 'pw-a', '-t', 'replug/#', '-t', 'replug/a/#', '-t', 'homeassistant/status'],
      ]);
      expect(await sub.subscribed()).toEqual([128, 0, 0]);
      await sub.stop();
    } finally {
      await broker.close();
    }
  });

  it('refuses to start beyond loopback without users or --allow-anonymous', async () => {
    const attempt = startBroker({ host: '0.0.0.0', port: 0 });
    await expect(attempt).rejects.toBeInstanceOf(ReplugError);
    await expect(attempt).rejects.toMatchObject({ code: ErrorCodes.BROKER_AUTH_REQUIRED });
  });

  // A non-loopback address of this machine lets a local client appear as a network peer.
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  if (external === undefined)
    process.stderr.write('\n!!! no non-loopback IPv4 address: skipping the network-peer test\n');
  it.skipIf(external === undefined && process.env.CI !== 'true')(
    'on 0.0.0.0 with users: network peers must log in, loopback peers need not',
    async () => {
      if (external === undefined) throw new Error('CI=true: this host needs a non-loopback IPv4 address');
      const broker = await startBroker({ host: '0.0.0.0', port: 0, usersFile: users });
      try {
        expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.address.port}`);
        const remoteAnon = await mosquittoPub([...conn(broker, external), '-t', 'replug/x/y', '-m', '1']);
        expect(remoteAnon.code).not.toBe(0);
        expect(remoteAnon.stderr).toMatch(/not authori[sz]ed/i);
        const remoteUser = await mosquittoPub([
          ...conn(broker, external),
          '-u',
          'a',
          '-P',
          'pw-a',
          '-t',
          'replug/a/y',
          '-m',
          '1',
        ]);
        expect(remoteUser.code).toBe(0);
        const localAnon = await mosquittoPub([...conn(broker), '-t', 'replug/x/y', '-m', '1']);
        expect(localAnon.code).toBe(0);
      } finally {
        await broker.close();
      }
    },
  );

  it("port in use: one clear BROKER_PORT_IN_USE error naming --broker-port, with the URL for the agent's --mqtt hint", async () => {
    const first = await startBroker({ port: 0 });
    try {
      const second = startBroker({ port: first.address.port });
      await expect(second).rejects.toMatchObject({
        code: ErrorCodes.BROKER_PORT_IN_USE,
        message: `port ${first.address.port} on 127.0.0.1 is already in use`,
      });
      const err = (await second.catch((e: unknown) => e)) as ReplugError;
      // `replug broker` has no --mqtt: the agent's boundary words that hint from details.url (e2e agent-cli).
      expect(err.details?.url).toBe(`mqtt://127.0.0.1:${first.address.port}`);
      expect(err.hint).toContain('--broker-port');
      expect(err.hint).not.toContain('--mqtt');
    } finally {
      await first.close();
    }
  });

  it('close() is idempotent and frees the port', async () => {
    const broker = await startBroker({ port: 0 });
    const port = broker.address.port;
    const idle = startSubscriber([...conn(broker), '-t', 'x']);
    await idle.subscribed();
    const silent = net.connect(port, '127.0.0.1'); // never sends CONNECT
    await once(silent, 'connect');
    silent.on('error', () => undefined); // a reset instead of a FIN is a close too
    const silentClosed = new Promise((resolve) => silent.once('close', resolve));
    // A connected client must not keep close() waiting (aedes ends its socket; we end pre-CONNECT ones).
    await Promise.all([broker.close(), broker.close()]);
    await broker.close();
    await silentClosed;
    const again = await startBroker({ port });
    await again.close();
    await idle.stop(); // mosquitto_sub would otherwise keep reconnecting
  });
});
