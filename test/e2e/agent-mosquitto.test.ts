/**
 * The real `replug agent` process publishing to a real Mosquitto (MQTT 5) that the test starts on a free
 * loopback port with its own config: what an operator sees with mosquitto_sub, the will after a crash, a
 * clean SIGTERM, and nothing lost when the broker crashes during a replug storm or when the agent restarts
 * while the broker is down (issue 3, "Nothing lost").
 *
 * Counting without trusting the transport: the agent runs with debug logs, where every event it publishes
 * is also logged with its `event` field. The events the broker delivered (deduplicated by seq: QoS 1 is
 * at-least-once) must match that log type by type, with every seq present and first arrivals in order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validatePayload } from '../../src/mqtt/schema.js';
import { parseTopic } from '../../src/mqtt/topics.js';
import { FakeUsbTree, ramTmpDir } from '../fakes/usb-tree.js';
import {
  type AgentProcess,
  DEVNODE_DRIVER,
  ensureBuilt,
  loggedEvents,
  spawnAgent,
} from '../helpers/agent-process.js';
import { type MosquittoBroker, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { mosquittoSubOnce } from '../helpers/mosquitto-clients.js';

const available = mosquittoAvailable('e2e: replug agent vs mosquitto');

type Json = Record<string, unknown>;
interface Received {
  topic: string;
  json: Json;
}

const TARGET = ['--target', '1209:0001', '--driver', DEVNODE_DRIVER];
const LOOPBACK = { vid: 0x1209, pid: 0x0001, serial: 'E2E1', product: 'Loopback' };

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** seq -> first arrival, and the seqs in first-arrival order. QoS 1 may deliver one twice. */
function firstArrivals(events: Received[]): {
  bySeq: Map<number, Json>;
  order: number[];
  duplicates: number;
} {
  const bySeq = new Map<number, Json>();
  const order: number[] = [];
  for (const e of events) {
    const seq = e.json.seq as number;
    if (bySeq.has(seq)) continue;
    bySeq.set(seq, e.json);
    order.push(seq);
  }
  return { bySeq, order, duplicates: events.length - order.length };
}

/** Resolves once the agent logged no new event for quietMs. */
async function quiet(proc: AgentProcess, quietMs = 1000): Promise<void> {
  let last = -1;
  let since = Date.now();
  await until('the event stream to go quiet', () => {
    const n = loggedEvents(proc).length;
    if (n !== last) {
      last = n;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  });
}

function countByType(items: { type: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { type } of items) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

describe.skipIf(!available)('replug agent (process) against Mosquitto', () => {
  let broker: MosquittoBroker;
  let tree: FakeUsbTree;
  let stateDir: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    broker = await startMosquitto();
  }, 240_000);
  afterAll(async () => {
    await broker?.cleanup();
  });
  beforeEach(async () => {
    if (!broker.running) await broker.start();
    tree = await FakeUsbTree.create({ parentDir: ramTmpDir() });
    stateDir = await mkdtemp(join(tmpdir(), 'replug-e2e-'));
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await tree.cleanup();
    await rm(stateDir, { recursive: true, force: true });
  });

  function agent(id: string, extra: readonly string[] = []): AgentProcess {
    const proc = spawnAgent({
      id,
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      stateDir,
      mqtt: broker.url,
      extra: ['--settle', '100', '--health-interval', '1000', ...extra],
    });
    cleanups.push(async () => {
      proc.kill('SIGKILL');
      await proc.exited();
    });
    return proc;
  }

  /** MQTT 5 subscriber whose session Mosquitto keeps across its own restarts, so it misses nothing. */
  async function subscriber(
    filter: string,
    clientId: string,
  ): Promise<{ client: MqttClient; got: Received[] }> {
    const got: Received[] = [];
    const client = mqtt.connect(broker.url, {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 100,
    });
    client.on('message', (topic, payload) => {
      got.push({ topic, json: JSON.parse(payload.toString('utf8')) as Json });
    });
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync(filter, { qos: 1 });
    cleanups.push(() => client.endAsync(true));
    return { client, got };
  }

  const eventsOf = (got: Received[], id: string) => got.filter((m) => m.topic === `replug/${id}/event`);
  const ofType = (got: Received[], id: string, type: string) =>
    eventsOf(got, id).filter((m) => m.json.type === type);

  it('publishes schema-valid payloads, a retained census and MQTT 5 user properties; SIGTERM exits 0 with offline "stopped"', async () => {
    const id = 'e2e-census';
    const { got } = await subscriber(`replug/${id}/#`, 'e2e-sub-census');
    const proc = agent(id, TARGET);
    await proc.waitForLog(
      (l) => /^connected to broker .* \(MQTT 5\)$/.test(l.msg),
      15_000,
      'an MQTT 5 connect',
    );
    const online = await until('status online', () =>
      got.find((m) => m.topic === `replug/${id}/status` && m.json.state === 'online'),
    );
    const session = online.json.session as number;
    expect(session).toBe(1); // a fresh state dir: the first boot

    await tree.plug(LOOPBACK);
    await proc.waitForLog((l) => l.event === 'session.state' && l.state === 'up', 10_000, 'session up');
    await tree.unplug(tree.devices()[0]!);
    await proc.waitForLog((l) => l.event === 'device.removed', 10_000, 'device removed');
    await tree.plug(LOOPBACK);
    await proc.waitUntil(
      () => loggedEvents(proc, 'reconnect.succeeded').length >= 2,
      10_000,
      'two reconnects succeeded',
    );
    await until('device.added twice, removed once, two reconnects and a detection report on MQTT', () => {
      return (
        ofType(got, id, 'device.added').length >= 2 &&
        ofType(got, id, 'device.removed').length >= 1 &&
        ofType(got, id, 'reconnect.succeeded').length >= 2 &&
        ofType(got, id, 'device.detection').length >= 1
      );
    });

    // Every payload validates against its schema, every topic parses, every kind shows up.
    const kinds = new Set<string>();
    for (const m of got) {
      const parsed = parseTopic(m.topic);
      expect(parsed, m.topic).toBeDefined();
      kinds.add(parsed!.kind);
      expect(validatePayload(parsed!.kind, m.json), `${m.topic} ${JSON.stringify(m.json)}`).toEqual({
        ok: true,
      });
    }
    expect([...kinds].sort()).toEqual(['devices', 'event', 'health', 'info', 'status', 'target']);
    for (const e of eventsOf(got, id)) expect(e.json.session).toBe(session);

    // The census: what an operator's `mosquitto_sub --retained-only -t 'replug/#' -v` prints.
    await until('retained devices with the device plugged again', () =>
      got.findLast((m) => m.topic === `replug/${id}/devices` && m.json.count === 1),
    );
    const census = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '--retained-only',
      '-W',
      '2',
      '-t',
      'replug/#',
      '-v',
    ]);
    const mine = census.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith(`replug/${id}/`))
      .map((l) => {
        const space = l.indexOf(' ');
        return { topic: l.slice(0, space), json: JSON.parse(l.slice(space + 1)) as Json };
      });
    expect(mine.map((m) => m.topic).sort()).toEqual(
      ['devices', 'health', 'info', 'status', 'target/1209-0001/state'].map((t) => `replug/${id}/${t}`),
    );
    for (const m of mine)
      expect(validatePayload(parseTopic(m.topic)!.kind, m.json), m.topic).toEqual({ ok: true });
    const byTopic = new Map(mine.map((m) => [m.topic.slice(`replug/${id}/`.length), m.json]));
    expect(byTopic.get('status')).toMatchObject({ state: 'online', session });
    expect(byTopic.get('devices')).toMatchObject({ count: 1 });
    expect(byTopic.get('info')).toMatchObject({ agent: id, targets: ['1209:0001'] });
    expect(byTopic.get('target/1209-0001/state')).toMatchObject({ target: '1209:0001', state: 'up' });

    // MQTT 5 user properties, as mosquitto_sub -V 5 -F %P prints them (key:value, space-separated).
    const props = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '-V',
      '5',
      '-t',
      `replug/${id}/status`,
      '-C',
      '1',
      '-W',
      '5',
      '-F',
      '%P|%C',
    ]);
    const [userProps, contentType] = props.stdout.trim().split('|');
    expect(userProps).toContain(`agent:${id}`);
    expect(userProps).toContain(`session:${session}`);
    expect(userProps).toMatch(/runtime:[a-z]+/);
    expect(contentType).toBe('application/json');

    // SIGTERM: a clean stop, exit code 0, and the agent itself says offline, reason stopped.
    const status = await proc.stop();
    expect(status).toEqual({ code: 0, signal: null });
    const offline = await until('status offline', () =>
      got.find((m) => m.topic === `replug/${id}/status` && m.json.state === 'offline'),
    );
    expect(offline.json).toMatchObject({ state: 'offline', reason: 'stopped', session });
    expect(validatePayload('status', offline.json)).toEqual({ ok: true });
    const retained = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '--retained-only',
      '-W',
      '2',
      '-t',
      `replug/${id}/status`,
    ]);
    expect(JSON.parse(retained.stdout.trim())).toMatchObject({
      state: 'offline',
      reason: 'stopped',
      session,
    });
  }, 60_000);

  it('SIGKILL: the broker delivers the retained offline will carrying the same session as the online', async () => {
    const id = 'e2e-will';
    const { got } = await subscriber(`replug/${id}/status`, 'e2e-sub-will');
    const first = agent(id);
    await until('first online', () => got.find((m) => m.json.state === 'online'));
    await first.stop(); // boot 1 ends cleanly; boot 2 is the one that crashes
    const proc = agent(id);
    const online = await until('second online', () =>
      got.find((m) => m.json.state === 'online' && m.json.session === 2),
    );
    proc.kill('SIGKILL');
    expect(await proc.exited()).toEqual({ code: null, signal: 'SIGKILL' });
    // The will waits out its will delay (2 s), then Mosquitto publishes and retains it.
    const will = await until(
      'the will',
      () => got.find((m) => m.json.state === 'offline' && m.json.session === 2),
      15_000,
    );
    expect(will.json.session).toBe(online.json.session);
    expect(will.json.reason).toBeUndefined(); // not a clean stop
    expect(validatePayload('status', will.json)).toEqual({ ok: true });
    const retained = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '--retained-only',
      '-W',
      '2',
      '-t',
      `replug/${id}/status`,
    ]);
    expect(JSON.parse(retained.stdout.trim())).toMatchObject({ state: 'offline', session: 2 });
  }, 60_000);

  it('loses no event when the broker is killed -9 and restarted during a replug storm', async () => {
    const id = 'e2e-storm';
    const { got } = await subscriber(`replug/${id}/event`, 'e2e-sub-storm');
    await new Promise((r) => setTimeout(r, 1200)); // Mosquitto autosaves the subscriber's session every second
    const proc = agent(id, TARGET);
    await proc.waitForLog((l) => /^connected to broker/.test(l.msg), 15_000, 'connected');

    const cycles = 200;
    for (let i = 1; i <= cycles; i++) {
      const device = await tree.plug(LOOPBACK);
      await proc.waitUntil(
        () => loggedEvents(proc, 'device.added').length >= i,
        10_000,
        `device.added #${i}`,
      );
      await tree.unplug(device);
      await proc.waitUntil(
        () => loggedEvents(proc, 'device.removed').length >= i,
        10_000,
        `device.removed #${i}`,
      );
      if (i === 60) await broker.kill();
      if (i === 130) await broker.start();
    }
    // Quiet: no new event for a second (detection reports follow each change after --settle 100 ms).
    await quiet(proc);
    const logged = loggedEvents(proc).map((l) => ({ type: String(l.event) }));
    const total = logged.length;

    const arrivals = await until(
      `all ${total} events`,
      () => {
        const a = firstArrivals(got);
        return a.bySeq.size >= total ? a : undefined;
      },
      30_000,
    ).catch((err: Error) => {
      const seen = firstArrivals(got).bySeq;
      const missing = Array.from({ length: total }, (_, k) => k + 1).filter((s) => !seen.has(s));
      throw new Error(
        `${err.message}; missing seq ${missing.slice(0, 50).join(',')}\n${proc.transcript().slice(-1500)}`,
      );
    });
    expect(arrivals.bySeq.size).toBe(total);
    expect(arrivals.order).toEqual(Array.from({ length: total }, (_, k) => k + 1));
    const received = countByType([...arrivals.bySeq.values()].map((j) => ({ type: String(j.type) })));
    expect(received).toEqual(countByType(logged));
    expect(received['device.added']).toBe(cycles);
    expect(received['device.removed']).toBe(cycles);
    expect(received['session.state']).toBeGreaterThanOrEqual(2 * cycles);
    for (const j of arrivals.bySeq.values()) expect(j.session).toBe(1);
    // Broker loss and recovery are logged once each, not once per retry.
    expect(proc.messages(/^lost the broker/)).toHaveLength(1);
    expect(proc.messages(/is back; delivering queued events$/)).toHaveLength(1);
    process.stdout.write(
      `storm: ${cycles} cycles, ${total} events, ${arrivals.duplicates} QoS 1 duplicate(s) after the broker crash\n`,
    );
  }, 120_000);

  it('an agent restarted while the broker is down delivers its queued events afterwards, seq continuing', async () => {
    const id = 'e2e-restart';
    const { got } = await subscriber(`replug/${id}/event`, 'e2e-sub-restart');
    const first = agent(id, TARGET);
    await first.waitForLog((l) => /^connected to broker/.test(l.msg), 15_000, 'connected');
    const dev1 = await tree.plug(LOOPBACK);
    await first.waitForLog((l) => l.event === 'session.state' && l.state === 'up', 10_000, 'session up');
    const beforeOutage = loggedEvents(first).length;
    await until('events before the outage', () => firstArrivals(got).bySeq.size >= beforeOutage);

    await broker.stop();
    await first.waitForLog((l) => /^lost the broker/.test(l.msg), 10_000, 'broker lost');
    await tree.unplug(dev1);
    await first.waitForLog((l) => l.event === 'device.removed', 10_000, 'removed while down');
    const dev2 = await tree.plug(LOOPBACK);
    await first.waitUntil(() => loggedEvents(first, 'device.added').length >= 2, 10_000, 'added while down');
    await new Promise((r) => setTimeout(r, 500)); // let the session and detection events of the replug happen
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    const firstCount = loggedEvents(first).length;

    const second = agent(id, TARGET);
    await second.waitForLog((l) => /^cannot reach the broker/.test(l.msg), 15_000, 'broker unreachable');
    await second.waitForLog((l) => l.event === 'device.added', 10_000, 'the plugged device seen at start');
    await tree.unplug(dev2);
    await second.waitForLog((l) => l.event === 'device.removed', 10_000, 'removed while down, second run');

    await broker.start();
    await second.waitForLog((l) => /is back; delivering queued events$/.test(l.msg), 15_000, 'broker back');
    await until(
      'the queue to drain',
      () => firstArrivals(got).bySeq.size >= firstCount + loggedEvents(second).length,
    );
    // A clean stop flushes its own last events (sessions stopped) too: count after it.
    expect(await second.stop()).toEqual({ code: 0, signal: null });
    const total = firstCount + loggedEvents(second).length;
    const arrivals = await until(
      `all ${total} events`,
      () => {
        const a = firstArrivals(got);
        return a.bySeq.size >= total ? a : undefined;
      },
      20_000,
    );
    expect(arrivals.bySeq.size).toBe(total);
    expect(arrivals.order).toEqual(Array.from({ length: total }, (_, k) => k + 1));
    // seq continues across the restart; each event keeps the session of the boot that produced it.
    for (const [seq, j] of arrivals.bySeq) expect(j.session, `seq ${seq}`).toBe(seq <= firstCount ? 1 : 2);
    const types = (from: number, to: number) =>
      countByType(
        [...arrivals.bySeq.entries()]
          .filter(([s]) => s >= from && s <= to)
          .map(([, j]) => ({ type: String(j.type) })),
      );
    expect(types(1, firstCount)).toEqual(
      countByType(loggedEvents(first).map((l) => ({ type: String(l.event) }))),
    );
    expect(types(firstCount + 1, total)).toEqual(
      countByType(loggedEvents(second).map((l) => ({ type: String(l.event) }))),
    );
  }, 90_000);
});
