/**
 * Commands on the agent's embedded broker: on by themselves when it has a users file (operators ask, an
 * observer cannot); off without one unless --commands, which then warns that the broker is open.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../src/agent/agent.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { PASSWORD, request, until, writeUsers } from './harness.js';

describe('commands on the embedded broker', () => {
  let dir: string;
  let tree: FakeUsbTree;
  let agent: RunningAgent | undefined;
  const lines: { level: number; msg: string }[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replug-fleet-emb-'));
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1' });
    lines.length = 0;
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await tree.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(extra: string[]): Promise<RunningAgent> {
    const config = loadAgentConfig(
      [
        ...['--id', 'emb-pi', '--broker-port', '0', '--state-dir', join(dir, 'state')],
        ...['--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot],
        ...extra,
      ],
      {},
      { hostname: 'ignored' },
    );
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    agent = await startAgent(config, {
      clock: systemClock,
      log,
      env: {},
      hostname: 'h',
      homedir: dir,
      version: '0.0.0-test',
      cwd: process.cwd(),
      runRoot: join(dir, 'run'),
      rootDir: dir,
    });
    await agent.publisher.connected();
    return agent;
  }

  it('a users file turns commands on: an operator asks, an observer is refused', async () => {
    const users = join(dir, 'users');
    await writeUsers(users, [
      ['ops', 'operator'],
      ['dash', 'observer'],
    ]);
    const a = await start(['--broker-users', users]);
    expect(a.features).toContain('commands');
    expect(lines.some((l) => l.level >= 40 && /open broker/.test(l.msg))).toBe(false);
    const ok = await request([
      '--mqtt',
      a.brokerUrl,
      '-u',
      'ops',
      '-P',
      PASSWORD,
      'emb-pi',
      'list',
      '--json',
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.lines[0] as string)).toMatchObject({
      agent: 'emb-pi',
      status: 'ok',
      data: { count: 1 },
    });
    const refused = await request(['--mqtt', a.brokerUrl, '-u', 'dash', '-P', PASSWORD, 'emb-pi', 'list']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/refused the request/);
  });

  it('without a users file commands are off; with --commands they answer and the agent warns the broker is open', async () => {
    const off = await start([]);
    expect(off.features).not.toContain('commands');
    const silent = await request(['--mqtt', off.brokerUrl, 'emb-pi', 'list', '--timeout', '1']);
    expect(silent.code).toBe(3);
    expect(silent.err).toContain('no answer within 1 s from emb-pi');
    await off.stop();
    agent = undefined;

    const on = await start(['--commands']);
    expect(lines.some((l) => l.level === 40 && /commands are enabled on an open broker/.test(l.msg))).toBe(
      true,
    );
    const r = await request(['--mqtt', on.brokerUrl, 'emb-pi', 'republish']);
    expect(r.code).toBe(0);
    expect(r.lines[0]).toMatch(/^emb-pi\s+ok\s+republish/);
  });

  it("forget sends an old target's Home Assistant components in the removal form and drops them from the record", async () => {
    const state = join(dir, 'state');
    await mkdir(state, { recursive: true });
    const old = Object.fromEntries(
      ['up', 'state', 'reconnects', 'p95'].map((s) => [
        `replug-emb-pi-0403-6001-${s}`,
        s === 'up' ? 'binary_sensor' : 'sensor',
      ]),
    );
    await writeFile(
      join(state, 'announced.json'),
      JSON.stringify({ targets: [], homeassistant: { prefix: 'homeassistant', components: old } }),
    );
    const a = await start(['--commands', '--homeassistant']);
    const ha = await mqtt.connectAsync(a.brokerUrl);
    const configs: Record<string, { p: string }>[] = [];
    ha.on('message', (_t, b) => b.length > 0 && configs.push(JSON.parse(b.toString()).cmps));
    await ha.subscribeAsync('homeassistant/device/replug-emb-pi/config', { qos: 1 });
    const r = await request(['--mqtt', a.brokerUrl, 'emb-pi', 'forget', '--target', '0403:6001', '--json']);
    expect(r.code).toBe(0);
    const cleared = (JSON.parse(r.lines[0] as string) as { data: { cleared: string[] } }).data.cleared;
    expect(cleared.sort()).toEqual(
      ['replug/emb-pi/target/0403-6001/state', ...Object.keys(old).map((id) => `homeassistant:${id}`)].sort(),
    );
    // Discovery configs are not retained: the one the agent sent at connect came before this subscriber, so
    // the config seen here is the one forget sent.
    const removal = await until('a config with the removal form', () =>
      configs.find(
        (c) =>
          c['replug-emb-pi-0403-6001-up']?.p === 'binary_sensor' &&
          Object.keys(c['replug-emb-pi-0403-6001-up'] ?? {}).length === 1,
      ),
    );
    expect(removal['replug-emb-pi-0403-6001-p95']).toEqual({ p: 'sensor' });
    const record = JSON.parse(await readFile(join(state, 'announced.json'), 'utf8')) as {
      homeassistant: { components: Record<string, string> };
    };
    expect(Object.keys(record.homeassistant.components).filter((id) => id.includes('0403-6001'))).toEqual([]);
    await ha.endAsync();
  });

  it('rescan answers with the sources that re-listed and the devices they list once done', async () => {
    const a = await start(['--commands']);
    const rescan = async () => {
      const r = await request(['--mqtt', a.brokerUrl, 'emb-pi', 'rescan', '--json']);
      expect(r.code).toBe(0);
      return (JSON.parse(r.lines[0] as string) as { data: { sources: string[]; devices: number } }).data;
    };
    // On a fake tree nusb and uevent are left out (they read the real machine); devfs and sysfs re-list.
    expect(await rescan()).toEqual({ sources: ['devfs', 'sysfs'], devices: 1 });
    await tree.plug({ vid: 0x0403, pid: 0x6001, serial: 'LATE' });
    expect(await rescan()).toEqual({ sources: ['devfs', 'sysfs'], devices: 2 });
    await a.stop();
    agent = undefined;
    const sysfsOnly = await start(['--commands', '--sources', 'sysfs']);
    const r = await request(['--mqtt', sysfsOnly.brokerUrl, 'emb-pi', 'rescan', '--json']);
    expect(JSON.parse(r.lines[0] as string)).toMatchObject({ data: { sources: ['sysfs'], devices: 2 } });
  });

  it('bad usage exits 2', async () => {
    expect((await request(['list'])).code).toBe(2);
    expect((await request(['--all', 'a', 'b'])).code).toBe(2);
    expect((await request(['Bad_Id', 'list'])).code).toBe(2);
    expect((await request(['pi', 'list', '--timeout', '0'])).code).toBe(2);
  });
});
