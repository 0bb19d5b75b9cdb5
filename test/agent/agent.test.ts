/**
 * The whole agent on a fake sysfs/devfs tree (real inotify), with its embedded Aedes on port 0 and a real
 * MQTT.js subscriber: what a user sees with `mosquitto_sub -t 'replug/#'` while a device is plugged,
 * unplugged and plugged again.
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../src/agent/agent.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import { parseTopic } from '../../src/mqtt/topics.js';
import { usbDevCharLink } from '../../src/usb/sysfs-read.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';

interface Received {
  topic: string;
  payload: Record<string, unknown>;
  retain: boolean;
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('replug agent on a fake tree', () => {
  let tree: FakeUsbTree;
  let stateDir: string;
  let agent: RunningAgent | undefined;
  let sub: MqttClient | undefined;
  const logLines: Record<string, unknown>[] = [];

  beforeEach(async () => {
    tree = await FakeUsbTree.create();
    stateDir = await mkdtemp(join(tmpdir(), 'replug-agent-'));
    logLines.length = 0;
  });

  afterEach(async () => {
    await sub?.endAsync();
    await agent?.stop();
    agent = undefined;
    await tree.cleanup();
    await rm(stateDir, { recursive: true, force: true });
  });

  async function start(extra: string[] = []): Promise<Received[]> {
    const config = loadAgentConfig(
      [
        '--id',
        'test-pi',
        '--sysfs-root',
        tree.sysfsRoot,
        '--devfs-root',
        tree.devfsRoot,
        '--broker-port',
        '0',
        '--state-dir',
        stateDir,
        '--rescan-interval',
        '100',
        '--settle',
        '300',
        ...extra,
      ],
      {},
      { hostname: 'ignored' },
    );
    const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
    agent = await startAgent(config, {
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
    const received: Received[] = [];
    sub = await mqtt.connectAsync(agent.brokerUrl, { protocolVersion: 4 });
    sub.on('message', (topic, buf, packet) => {
      received.push({ topic, payload: JSON.parse(buf.toString()), retain: packet.retain });
    });
    await sub.subscribeAsync('replug/#', { qos: 1 });
    return received;
  }

  const events = (r: Received[], type: string) =>
    r.filter((m) => m.topic === 'replug/test-pi/event' && m.payload.type === type);

  it('publishes devices coming and going and the session going up, down and up with reconnect timings', async () => {
    const received = await start(['--target', '1209:0001', '--driver', 'examples/drivers/devnode.mjs']);
    await until('retained status online', () =>
      received.find((m) => m.topic === 'replug/test-pi/status' && m.payload.state === 'online'),
    );

    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1', product: 'Loopback' });
    await until('session up', () => events(received, 'session.state').find((m) => m.payload.state === 'up'));
    await tree.unplug(tree.devices()[0]!);
    await until('session back to waiting', () =>
      events(received, 'session.state').find(
        (m) => m.payload.state === 'waiting' && m.payload.previous !== 'stopped',
      ),
    );
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1', product: 'Loopback' });
    await until(
      'second session up',
      () => events(received, 'session.state').filter((m) => m.payload.state === 'up').length >= 2,
    );
    await until('two reconnect.succeeded', () => events(received, 'reconnect.succeeded').length >= 2);
    await until('a detection report', () => events(received, 'device.detection').length >= 1);

    const added = events(received, 'device.added');
    expect(added.length).toBeGreaterThanOrEqual(2);
    expect((added[0]!.payload.device as { vid: string; serial: string }).vid).toBe('1209');
    expect((added[0]!.payload.device as { serial: string }).serial).toBe('LAB1');
    expect(events(received, 'device.removed')).toHaveLength(1);
    for (const ok of events(received, 'reconnect.succeeded')) {
      expect(ok.payload.target).toBe('1209:0001');
      expect(typeof ok.payload.durationMs).toBe('number');
      expect(ok.payload.durationMs as number).toBeGreaterThanOrEqual(0);
    }
    // seq strictly increases across the event stream.
    const seqs = received.filter((m) => m.topic.endsWith('/event')).map((m) => m.payload.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    // The retained target state carries the reconnect stats.
    const state = await until('target state with 2 ok', () =>
      received.findLast(
        (m) =>
          m.topic === 'replug/test-pi/target/1209-0001/state' &&
          (m.payload.reconnects as { ok: number }).ok >= 2,
      ),
    );
    expect(state.payload.state).toBe('up');
    const r = state.payload.reconnects as { count: number; ok: number; failed: number };
    expect(r.count).toBe(r.ok + r.failed); // ok / count is the success rate replug watch shows
    expect((state.payload.reconnects as { p50Ms: number }).p50Ms).toBeGreaterThanOrEqual(0);

    // Every payload validates against its JSON Schema.
    for (const m of received) {
      const parsed = parseTopic(m.topic);
      expect(parsed, m.topic).toBeDefined();
      const result = validatePayload(parsed!.kind, m.payload);
      expect(result, `${m.topic} ${JSON.stringify(m.payload)}`).toEqual({ ok: true });
    }
    // The log reads like the original tool's.
    const messages = logLines.map((l) => l.msg as string);
    expect(messages.some((m) => /^device discovered: 1209:0001 Loopback serial LAB1/.test(m))).toBe(true);
    expect(messages.some((m) => /^session 1209:0001: reconnect took \d+ ms/.test(m))).toBe(true);
  });

  it('a plug seen first without its strings says device.identified on the event topic when the serial comes', async () => {
    // The kernel's devt link (the fake has none): the devfs source reports a plug from sysfs' lock-free
    // attributes at once, then reads the strings. devfs alone, so no other source reports it first.
    mkdirSync(join(tree.sysfsRoot, 'dev', 'char'), { recursive: true });
    symlinkSync(join('..', '..', 'bus', 'usb', 'devices', '1-4'), usbDevCharLink(tree.sysfsRoot, 1, 20));
    const received = await start(['--sources', 'devfs']);
    await until('retained status online', () =>
      received.find((m) => m.topic === 'replug/test-pi/status' && m.payload.state === 'online'),
    );
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB7', address: 20, portPath: '1-4' });
    await until('device.identified', () => events(received, 'device.identified')[0]);
    await tree.unplug('1-4');
    await until('device.removed', () => events(received, 'device.removed')[0]);
    const [added, identified, removed] = ['device.added', 'device.identified', 'device.removed'].map((t) =>
      events(received, t).map((m) => m.payload.device as { key: string; serial?: string }),
    );
    expect(added).toEqual([expect.objectContaining({ key: 'port:1-4', vid: '1209', address: 20 })]);
    expect(added?.[0]?.serial).toBeUndefined();
    expect(identified).toEqual([expect.objectContaining({ key: 'serial:LAB7', serial: 'LAB7' })]);
    expect(removed).toEqual([expect.objectContaining({ key: 'serial:LAB7' })]);
    for (const m of received.filter((x) => x.topic === 'replug/test-pi/event'))
      expect(validatePayload('event', m.payload), JSON.stringify(m.payload)).toEqual({ ok: true });
  });

  it('says once that there is no USB bus, keeps running, and picks the bus up when it appears', async () => {
    await tree.removeBus();
    const received = await start();
    await until('no-bus warning', () =>
      logLines.find((l) => String(l.msg).startsWith('no USB bus on this host')),
    );
    // The retained census first: Aedes delivers retained messages from its LevelDB store after the SUBACK,
    // and one arriving late must not be mistaken for the live update awaited below.
    await until('retained devices with no entry', () =>
      received.find((m) => m.topic === 'replug/test-pi/devices' && m.payload.count === 0),
    );
    await tree.createBus(1);
    await tree.plug({ vid: '0627', pid: '0001', product: 'QEMU USB Keyboard' });
    await until('device.added after the bus appeared', () => events(received, 'device.added')[0]);
    expect(logLines.filter((l) => String(l.msg).startsWith('no USB bus on this host'))).toHaveLength(1);
    const devices = await until('retained devices with one entry', () =>
      received.findLast((m) => m.topic === 'replug/test-pi/devices' && m.payload.count === 1),
    );
    expect((devices.payload.devices as { pid: string }[])[0]!.pid).toBe('0001');
  });

  it('bumps the boot counter on every start, so late wills can be told apart', async () => {
    await start();
    const first = agent!.session;
    await sub!.endAsync();
    sub = undefined;
    await agent!.stop();
    await start();
    expect(agent!.session).toBe(first + 1);
  });

  it('--broker-limit retained-topics=2 makes its embedded broker refuse a third retained topic, as replug broker --limit does', async () => {
    await start(['--broker-limit', 'retained-topics=2']);
    expect(agent!.broker?.limits.retainedTopics).toBe(2);
    const other = await mqtt.connectAsync(agent!.brokerUrl, { protocolVersion: 5, reconnectPeriod: 0 });
    try {
      for (const n of [1, 2]) await other.publishAsync(`replug/other/t${n}`, '{}', { qos: 1, retain: true });
      const third = await other.publishAsync('replug/other/t3', '{}', { qos: 1, retain: true }).then(
        () => 'accepted',
        (err: { code?: number }) => err.code,
      );
      // 0x97 Quota exceeded: the retained-topics row of docs/broker.md.
      expect(third).toBe(0x97);
      // Replacing a topic it holds is not a new topic: still accepted at the quota.
      await other.publishAsync('replug/other/t1', '{"n":2}', { qos: 1, retain: true });
    } finally {
      await other.endAsync();
    }
  });
});
