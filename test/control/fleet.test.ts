/**
 * Fleet control end to end on a real Aedes (the broker `replug broker` runs, with a users file): ten
 * simulated agents and one real agent on a fake tree, asked through `replug request`; refusals by role;
 * a replayed transaction answered once; stale and hostile requests refused over the wire.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../src/agent/agent.js';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { validateControl } from '../../src/control/schema.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { PASSWORD, request, type SimAgent, simAgent, until, writeUsers } from './harness.js';

const SIMS = Array.from({ length: 10 }, (_, i) => `sim-${String(i + 1).padStart(2, '0')}`);

describe('fleet control on replug broker (users file, operator role)', () => {
  let dir: string;
  let broker: RunningBroker;
  let tree: FakeUsbTree;
  let agent: RunningAgent;
  let sims: SimAgent[] = [];
  let operator: MqttClient;
  const responses: { topic: string; body: Record<string, unknown> }[] = [];
  const as = (user: string) => ['--mqtt', broker.url, '-u', user, '-P', PASSWORD];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replug-fleet-'));
    const usersFile = join(dir, 'users');
    await writeUsers(usersFile, [
      ...SIMS.map((s) => [s, 'agent'] as [string, 'agent']),
      ['real-pi', 'agent'],
      ['ops', 'operator'],
      ['dash', 'observer'],
    ]);
    broker = await startBroker({ port: 0, usersFile });
    sims = await Promise.all(SIMS.map((id) => simAgent(broker.url, id)));
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1', product: 'Loopback' });
    const config = loadAgentConfig(
      [
        ...['--id', 'real-pi', '--mqtt', broker.url, '-u', 'real-pi', '-P', PASSWORD, '--commands'],
        ...[
          '--sysfs-root',
          tree.sysfsRoot,
          '--devfs-root',
          tree.devfsRoot,
          '--state-dir',
          join(dir, 'state'),
        ],
        ...[
          '--target',
          '1209:0001:LAB1',
          '--driver',
          'examples/drivers/devnode.mjs',
          '--rescan-interval',
          '100',
        ],
      ],
      {},
      { hostname: 'ignored' },
    );
    agent = await startAgent(config, {
      clock: systemClock,
      log: pino({ level: 'silent' }),
      env: {},
      hostname: 'test-host',
      homedir: dir,
      version: '0.0.0-test',
      cwd: process.cwd(),
      runRoot: join(dir, 'run'),
      rootDir: dir,
    });
    await agent.publisher.connected();
    await until('the real session up', () => agent.sessions.get('1209:0001:LAB1')?.state === 'up');
    operator = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      username: 'ops',
      password: PASSWORD,
    });
    operator.on('message', (topic, buf) => {
      if (topic.includes('/response/')) responses.push({ topic, body: JSON.parse(buf.toString()) });
    });
    await operator.subscribeAsync('replug/+/response/#', { qos: 1 });
  }, 60_000);

  afterAll(async () => {
    await operator?.endAsync();
    for (const s of sims) await s.client.endAsync();
    await agent?.stop();
    await broker?.close();
    await tree?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('`replug request --all republish` prints one line per agent of the census, exit 0', async () => {
    const r = await request([...as('ops'), '--all', 'republish']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const agents = r.lines.map((l) => l.split(/\s+/)[0]).sort();
    expect(agents).toEqual([...SIMS, 'real-pi'].sort());
    for (const l of r.lines) expect(l).toMatch(/^\S+\s+ok\s+republish\s+\{"topics":\d+\}$/);
    for (const s of sims) expect(s.ports.calls).toEqual(['republish']);
  });

  it('--json: NDJSON, one object per agent, each a schema-valid response body', async () => {
    const r = await request([...as('ops'), '--all', 'list', '--json']);
    expect(r.code).toBe(0);
    const objects = r.lines.map(
      (l) => JSON.parse(l) as { agent: string; status: string; data: { count: number } },
    );
    expect(objects).toHaveLength(11);
    const real = objects.find((o) => o.agent === 'real-pi');
    expect(real?.status).toBe('ok');
    expect(real?.data.count).toBe(1);
  });

  it('the real agent: every action, as an operator', async () => {
    const one = async (...args: string[]) => {
      const r = await request([...as('ops'), 'real-pi', ...args, '--json']);
      // biome-ignore lint/suspicious/noExplicitAny: the test reads nested JSON fields of several shapes.
      return { code: r.code, body: JSON.parse(r.lines[0] ?? '{}') as Record<string, any> };
    };
    expect((await one('rescan')).body.data).toEqual({
      sources: ['devfs', 'sysfs'], // the sources that re-listed: nusb and uevent are left out on a fake tree
      devices: 1,
    });
    const restart = await one('restart', '--target', '1209:0001:LAB1');
    expect(restart).toMatchObject({
      code: 0,
      body: { status: 'ok', data: { target: '1209:0001:LAB1', state: 'up' } },
    });
    const doctor = await one('doctor');
    expect(Object.keys(doctor.body.data).sort()).toEqual(['facts', 'info', 'roots', 'summary', 'verdict']);
    expect(doctor.body.data.roots.sys).toBe(tree.sysfsRoot);
    const reset = await one('reset', '--target', '1209:0001:LAB1');
    expect(reset).toMatchObject({
      code: 1,
      body: { status: 'error', error: { code: 'REPLUG_HEAL_UNAVAILABLE' } },
    });
    const configured = await one('forget', '--target', '1209:0001:LAB1');
    expect(configured.body.error.code).toBe('REPLUG_TARGET_CONFIGURED');
    const unknown = await one('frobnicate');
    expect(unknown).toMatchObject({ code: 1, body: { error: { code: 'REPLUG_UNKNOWN_ACTION' } } });
  });

  it('forget clears the retained state of a target the agent no longer has', async () => {
    // An operator may publish requests only (0x87 here); the agent itself wrote this in an earlier run.
    await expect(
      operator.publishAsync('replug/real-pi/target/0403-6001/state', '{"old":1}', { qos: 1, retain: true }),
    ).rejects.toThrow(/Not authorized/);
    const old = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      username: 'real-pi',
      password: PASSWORD,
      clientId: 'old-run',
    });
    await old.publishAsync('replug/real-pi/target/0403-6001/state', '{"old":1}', { qos: 1, retain: true });
    await old.endAsync();
    const r = await request([...as('ops'), 'real-pi', 'forget', '--target', '0403:6001', '--json']);
    expect(JSON.parse(r.lines[0] as string).data.cleared).toEqual(['replug/real-pi/target/0403-6001/state']);
    const check = await mqtt.connectAsync(broker.url, { username: 'dash', password: PASSWORD });
    const retained: string[] = [];
    check.on('message', (t, b) => b.length > 0 && retained.push(t));
    await check.subscribeAsync('replug/real-pi/target/#', { qos: 1 });
    await until('the live target retained', () =>
      retained.includes('replug/real-pi/target/1209-0001-lab1/state'),
    );
    expect(retained).not.toContain('replug/real-pi/target/0403-6001/state');
    await check.endAsync();
  });

  it('refuses by role: an observer and an agent cannot ask; nobody acts', async () => {
    const before = sims.map((s) => s.ports.calls.length);
    const observer = await request([...as('dash'), '--all', 'rescan', '--timeout', '2']);
    expect(observer.code).toBe(1);
    expect(observer.err).toMatch(/refused the request/);
    const asAgent = await request([...as('sim-01'), 'sim-02', 'rescan', '--timeout', '2']);
    expect(asAgent.code).toBe(1);
    expect(asAgent.err).toMatch(/refused the request/);
    expect(sims.map((s) => s.ports.calls.length)).toEqual(before);
  });

  it('names the agents that did not answer, exit 3', async () => {
    const mute = sims[9] as SimAgent;
    mute.client.removeAllListeners('message');
    const r = await request([...as('ops'), '--all', 'list', '--timeout', '2']);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`no answer within 2 s from ${mute.id}`);
    expect(r.lines.find((l) => l.startsWith(mute.id))).toMatch(/no answer within 2 s/);
    expect(r.lines).toHaveLength(11);
  });

  it('a replayed transaction is answered once; a stale or hostile request gets an error and changes nothing', async () => {
    const sim = sims[0] as SimAgent;
    const calls = sim.ports.calls.length;
    responses.length = 0;
    const body = JSON.stringify({ transaction: 'replay-1', ts: Date.now() });
    await operator.publishAsync(`replug/${sim.id}/request/rescan`, body, { qos: 1 });
    await operator.publishAsync(`replug/${sim.id}/request/rescan`, body, { qos: 1 });
    await operator.publishAsync('replug/_fleet/request/rescan', body, { qos: 1 });
    // A marker after the replays: once its answer is in, the replays' answers would have been too.
    await operator.publishAsync(`replug/${sim.id}/request/list`, '{"transaction":"marker"}', { qos: 1 });
    await until('marker answered', () => responses.find((r) => r.body.transaction === 'marker'));
    const mine = responses.filter((r) => r.topic === `replug/${sim.id}/response/rescan`);
    expect(mine).toHaveLength(1);
    expect(sim.ports.calls.length).toBe(calls + 2); // one rescan, one list

    responses.length = 0;
    const hostile = [
      JSON.stringify({ transaction: 'stale', ts: Date.now() - 3_600_000 }),
      'not json',
      'x'.repeat(100_000),
      JSON.stringify({ transaction: 'types', target: ['a'] }),
    ];
    for (const h of hostile) await operator.publishAsync('replug/real-pi/request/restart', h, { qos: 1 });
    await until('four refusals', () => (responses.length >= 4 ? responses : undefined));
    expect(responses.map((r) => r.body.error && (r.body.error as { code: string }).code)).toEqual([
      'REPLUG_REQUEST_STALE',
      'REPLUG_REQUEST_INVALID',
      'REPLUG_REQUEST_TOO_LARGE',
      'REPLUG_REQUEST_INVALID',
    ]);
    for (const r of responses) expect(validateControl('response', r.body)).toEqual({ ok: true });
    expect(agent.sessions.get('1209:0001:LAB1')?.state).toBe('up');
  });

  it("MQTT 5: the answer carries the Correlation Data, and goes to a Response Topic under the agent's response root", async () => {
    const got: { topic: string; cd?: string }[] = [];
    operator.on('message', (topic, _b, packet) =>
      got.push({ topic, cd: packet.properties?.correlationData?.toString() }),
    );
    await operator.publishAsync('replug/real-pi/request/list', '{}', {
      qos: 1,
      properties: {
        responseTopic: 'replug/real-pi/response/list/ops-1',
        correlationData: Buffer.from('c-42'),
      },
    });
    await until('both answers', () => got.filter((g) => g.cd === 'c-42').length >= 2);
    expect(
      got
        .filter((g) => g.cd === 'c-42')
        .map((g) => g.topic)
        .sort(),
    ).toEqual(['replug/real-pi/response/list', 'replug/real-pi/response/list/ops-1']);
  });
});
