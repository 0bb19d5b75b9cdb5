/**
 * The agent's features end to end on a fake tree with a real broker and a real MQTT.js subscriber: what
 * survives a failing timer, how long a stop may take, what `health` shows once the backlog is gone, and
 * what the agent clears when a target leaves the configuration (issues 10, 12, 13).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FEATURES } from '../../src/agent/after-online.js';
import { type RunningAgent, startAgent } from '../../src/agent/agent.js';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';

interface Msg {
  topic: string;
  text: string;
  json: Record<string, unknown> | undefined;
  retain: boolean;
}
type Line = { level: number; msg: string; [k: string]: unknown };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let tree: FakeUsbTree;
let stateDir: string;
const cleanups: (() => Promise<unknown>)[] = [];
let lines: Line[] = [];

beforeEach(async () => {
  tree = await FakeUsbTree.create();
  stateDir = await mkdtemp(join(tmpdir(), 'replug-features-'));
  lines = [];
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  vi.restoreAllMocks();
  await tree.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

async function start(extra: string[]): Promise<RunningAgent> {
  const config = loadAgentConfig(
    [
      '--id',
      'feat-pi',
      '--sysfs-root',
      tree.sysfsRoot,
      '--devfs-root',
      tree.devfsRoot,
      '--state-dir',
      stateDir,
      '--rescan-interval',
      '100',
      '--settle',
      '200',
      ...extra,
    ],
    {},
    { hostname: 'ignored' },
  );
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const agent = await startAgent(config, {
    clock: systemClock,
    log,
    env: {},
    hostname: 'test-host',
    homedir: stateDir,
    version: '0.0.0-test',
    cwd: process.cwd(),
    runRoot: join(stateDir, 'run'),
    rootDir: stateDir,
  });
  cleanups.push(() => agent.stop());
  return agent;
}

async function subscribe(url: string, filter: string): Promise<{ client: MqttClient; got: Msg[] }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 100 });
  cleanups.push(() => client.endAsync(true));
  const got: Msg[] = [];
  client.on('message', (topic, buf, packet) => {
    const text = buf.toString();
    got.push({ topic, text, json: text ? JSON.parse(text) : undefined, retain: packet.retain });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, got };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('the agent as a list of features', () => {
  it('starts every feature the configuration asks for, in the root order', async () => {
    const agent = await start(['--broker-port', '0']);
    expect(FEATURES.length).toBeGreaterThanOrEqual(8);
    expect(agent.features).toEqual([
      'log',
      'events',
      'info',
      'devices',
      'targets',
      'health',
      'health-file',
      'homeassistant',
    ]);
  });

  it('no agent timer dies of an exception: health comes back once memoryUsage works again (issue 12)', async () => {
    // EMFILE inside process.memoryUsage() (it reads /proc/self/statm through an fd) used to end the
    // health timer for good, and at start it failed the whole agent. The health input no longer throws
    // for it (rssBytes null, src/agent/health.ts); the timer must also survive a tick that does throw.
    let failing = true;
    const real = process.memoryUsage.bind(process);
    vi.spyOn(process, 'memoryUsage').mockImplementation((() => {
      if (failing)
        throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), {
          code: 'EMFILE',
        });
      return real();
    }) as typeof process.memoryUsage);
    const agent = await start(['--broker-port', '0', '--health-interval', '1000']);
    const { got } = await subscribe(agent.brokerUrl, 'replug/feat-pi/health');
    const setHealth = agent.publisher.setHealth.bind(agent.publisher);
    let throwing = true;
    vi.spyOn(agent.publisher, 'setHealth').mockImplementation((h) => {
      if (throwing) throw new Error('a tick that throws');
      setHealth(h);
    });
    await sleep(2300); // two ticks fail
    throwing = false;
    await until(
      'health while memoryUsage fails',
      () => got.find((m) => (m.json?.memory as { rssBytes?: unknown } | undefined)?.rssBytes === null),
      5000,
    );
    failing = false;
    await until(
      'a health payload once memoryUsage works again',
      () =>
        got.find((m) => typeof (m.json?.memory as { rssBytes?: unknown } | undefined)?.rssBytes === 'number'),
      5000,
    );
    expect(lines.filter((l) => /the health report failed/.test(l.msg))).toHaveLength(1);
  });

  it('a part that hangs in stop is abandoned with one line after its bound (issue 12)', async () => {
    const agent = await start(['--broker-port', '0']);
    agent.watcher.stop = () => new Promise<void>(() => {}); // a source stuck in the kernel
    const t0 = Date.now();
    await agent.stop();
    const took = Date.now() - t0;
    expect(took).toBeLessThan(5000);
    expect(
      lines.filter((l) => l.msg === 'stop: watcher did not finish within 1500 ms; abandoned'),
    ).toHaveLength(1);
  });

  it('health is published again once the backlog drains after a connect (issue 10)', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const agent = await start(['--mqtt', url, '--health-interval', '60000']);
    for (let i = 0; i < 3; i++) await tree.plug({ vid: '1209', pid: '0001', serial: `Q${i}` });
    await until(
      'events queued while the broker is away',
      () => (agent.publisher.stats().queue?.depth ?? 0) >= 3,
    );
    let broker: RunningBroker | undefined;
    broker = await startBroker({ port });
    cleanups.push(() => broker?.close() ?? Promise.resolve());
    await agent.publisher.idle(10_000);
    // The health published at the connect showed the backlog; once it drained, health says so again.
    const watcher = await subscribe(url, 'replug/feat-pi/health');
    await until('a health with an empty queue', () =>
      watcher.got.find((m) => (m.json?.queue as { depth?: number } | undefined)?.depth === 0),
    );
    // And that is what the broker keeps: a fresh subscriber's retained health.
    const { got } = await subscribe(url, 'replug/feat-pi/health');
    const retained = await until('the retained health', () => got.find((m) => m.retain));
    expect(retained.json).toMatchObject({ queue: { depth: 0 } });
  });

  it('a target taken out of the configuration: its retained state is emptied and HA told to remove it (issue 10)', async () => {
    const first = await start([
      '--broker-port',
      '0',
      '--target',
      '1209:0001',
      '--target',
      '1209:0002',
      '--homeassistant',
    ]);
    const url = first.brokerUrl;
    const port = Number(new URL(url).port);
    const seen = await subscribe(url, 'replug/feat-pi/target/+/state');
    await until('both retained target states', () => new Set(seen.got.map((m) => m.topic)).size === 2);
    await first.stop();

    const second = await start(['--broker-port', String(port), '--target', '1209:0001', '--homeassistant']);
    const ha = await subscribe(second.brokerUrl, 'homeassistant/device/+/config');
    await ha.client.publishAsync('homeassistant/status', 'online'); // HA's birth: it is listening
    const config = await until('a discovery config with the removal', () =>
      ha.got.find(
        (m) => (m.json?.cmps as Record<string, unknown> | undefined)?.['replug-feat-pi-1209-0002-up'],
      ),
    );
    const cmps = config.json?.cmps as Record<string, Record<string, unknown>>;
    expect(cmps['replug-feat-pi-1209-0002-up']).toEqual({ p: 'binary_sensor' });
    expect(cmps['replug-feat-pi-1209-0002-p95']).toEqual({ p: 'sensor' });
    expect(cmps['replug-feat-pi-1209-0001-up']).toMatchObject({
      p: 'binary_sensor',
      state_topic: expect.any(String),
    });

    // The broker's acknowledgement, not a pause: under load the clear may still be queued 300 ms later, and
    // a fresh subscriber would then still get the old retained state (the flake this test had).
    await until('the removal acknowledged', () =>
      lines.find((l) => /1209-0002: the broker acknowledged the cleared state/.test(l.msg)),
    );
    const fresh = await subscribe(second.brokerUrl, 'replug/feat-pi/target/+/state');
    await until('the retained state of the kept target', () =>
      fresh.got.find((m) => m.topic.endsWith('1209-0001/state')),
    );
    await sleep(300);
    // The kept target may be republished meanwhile (agent.ready); what must be absent is the removed one.
    expect([...new Set(fresh.got.map((m) => m.topic))]).toEqual(['replug/feat-pi/target/1209-0001/state']);
  });
});
