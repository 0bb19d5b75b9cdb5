/**
 * The publisher against a real Mosquitto (MQTT 5), observed with the Debian reference clients and a
 * persistent-session MQTT.js subscriber: user properties, the retained census, the will, and nothing lost
 * across a broker crash or an agent restart while the broker is down.
 */

import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPublisher, type Publisher, type PublisherOptions } from '../../src/mqtt/publisher.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import { parseTopic } from '../../src/mqtt/topics.js';
import { type MosquittoBroker, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { mosquittoSubOnce } from '../helpers/mosquitto-clients.js';
import { device, health, info, snapshot } from './fixtures.js';
import { type Received, tempDir } from './helpers.js';

const available = mosquittoAvailable('mqtt publisher vs mosquitto');

describe.skipIf(!available)('publisher against Mosquitto (MQTT 5)', () => {
  let broker: MosquittoBroker;
  let state: { dir: string; cleanup(): Promise<void> };
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.cleanup();
  });
  beforeEach(async () => {
    state = await tempDir('replug-pubm-');
    if (!broker.running) await broker.start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await state.cleanup();
  });

  function publisher(agent: string, extra: Partial<PublisherOptions> = {}): Publisher {
    const p = createPublisher({
      url: broker.url,
      agent,
      session: 3,
      version: '0.1.0',
      runtime: 'docker',
      stateDir: state.dir,
      reconnectPeriodMs: 100,
      ...extra,
    });
    cleanups.push(() => p.stop());
    return p;
  }

  /** A subscriber whose session survives broker restarts (persisted by mosquitto), so it misses nothing. */
  async function durableSubscriber(filter: string, id: string) {
    const messages: Received[] = [];
    const client = mqtt.connect(broker.url, {
      protocolVersion: 5,
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 100,
    });
    client.on('message', (topic, payload) => {
      messages.push({ topic, json: JSON.parse(payload.toString('utf8')), retain: false });
    });
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.subscribeAsync(filter, { qos: 1 });
    cleanups.push(() => client.endAsync(true));
    return { client, messages };
  }

  async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Every seq 1..n present, and the first arrival of each in increasing order (QoS 1 may duplicate). */
  function expectAllInOrder(messages: Received[], n: number): void {
    const firsts: number[] = [];
    const seen = new Set<number>();
    for (const m of messages) {
      const seq = m.json.seq as number;
      if (!seen.has(seq)) firsts.push(seq);
      seen.add(seq);
    }
    expect(firsts).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  }

  it('speaks MQTT 5: content type and user properties visible with mosquitto_sub -V 5 -F %P', async () => {
    const p = publisher('mq-props');
    p.setHealth(health);
    await p.start();
    await p.connected();
    expect(p.protocolVersion).toBe(5);
    const sub = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '-V',
      '5',
      '-t',
      'replug/mq-props/health',
      '-C',
      '1',
      '-W',
      '5',
      '-F',
      '%P|%C|%p',
    ]);
    const [props, contentType, json] = sub.stdout.trim().split('|');
    expect(props).toContain('agent:mq-props');
    expect(props).toContain('runtime:docker');
    expect(props).toContain('session:3');
    expect(contentType).toBe('application/json');
    expect(validatePayload('health', JSON.parse(json ?? '{}'))).toEqual({ ok: true });
  });

  it('leaves a complete, schema-valid census that mosquitto_sub --retained-only prints', async () => {
    const p = publisher('mq-census');
    p.setInfo({ ...info, agent: 'mq-census' });
    p.setDevices([device]);
    p.setTargetState(snapshot);
    p.setHealth(health);
    await p.start();
    await p.connected();
    await new Promise((r) => setTimeout(r, 300));
    const sub = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '-t',
      'replug/mq-census/#',
      '--retained-only',
      '-W',
      '2',
      '-F',
      '%t %p',
    ]);
    const lines = sub.stdout.trim().split('\n');
    const byKind = new Map(
      lines.map((l) => {
        const i = l.indexOf(' ');
        return [parseTopic(l.slice(0, i))?.kind, JSON.parse(l.slice(i + 1))] as const;
      }),
    );
    expect([...byKind.keys()].sort()).toEqual(['devices', 'health', 'info', 'status', 'target']);
    for (const [kind, value] of byKind) expect(validatePayload(kind!, value), kind).toEqual({ ok: true });
    expect(byKind.get('info').broker.protocolVersion).toBe(5);
  });

  it('a destroyed connection yields the offline will after the will delay', async () => {
    const p = publisher('mq-will', { willDelayS: 1, reconnectPeriodMs: 60_000 });
    await p.start();
    await p.connected();
    const started = Date.now();
    p.mqttClient?.stream.destroy();
    const sub = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '-t',
      'replug/mq-will/status',
      '-W',
      '6',
      '-F',
      '%r %p',
      '-C',
      '2',
    ]);
    // The live copy arrives with retain 0 (MQTT 5 §3.3.1.3 without Retain As Published): check it was
    // retained by asking again for retained messages only.
    expect(sub.stdout).toMatch(/"state":"offline"/);
    const retained = await mosquittoSubOnce([
      '-p',
      String(broker.port),
      '-t',
      'replug/mq-will/status',
      '--retained-only',
      '-W',
      '2',
      '-F',
      '%r %p',
    ]);
    const line = retained.stdout.trim();
    expect(line.startsWith('1 '), line).toBe(true);
    expect(JSON.parse(line.slice(2))).toMatchObject({ state: 'offline', session: 3 });
    expect(validatePayload('status', JSON.parse(line.slice(2)))).toEqual({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('loses no event and keeps order when the broker is killed -9 and restarted mid-stream', async () => {
    const sub = await durableSubscriber('replug/mq-crash/event', 'sub-crash');
    await new Promise((r) => setTimeout(r, 1200)); // mosquitto autosaves the subscriber's session every second
    const p = publisher('mq-crash');
    await p.start();
    await p.connected();
    const total = 300;
    for (let i = 1; i <= total; i++) {
      p.publishEvent('reconnect.attempt', { target: '1209:0001', attempt: i, device });
      if (i === 100) await broker.kill();
      if (i === 200) await broker.start();
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await p.idle(20_000);
    await until(
      () => new Set(sub.messages.map((m) => m.json.seq)).size >= total,
      15_000,
      `${total} events`,
    ).catch((err: Error) => {
      const seen = new Set(sub.messages.map((m) => m.json.seq));
      const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !seen.has(n));
      throw new Error(
        `${err.message}; missing seq ${missing.join(',')}; queue ${JSON.stringify(p.stats())}\n${broker.log().slice(-1500)}`,
      );
    });
    expectAllInOrder(sub.messages, total);
    expect(p.stats().broker.reconnects).toBeGreaterThanOrEqual(1);
  });

  it('an agent restarted while the broker is down delivers the queued events afterwards', async () => {
    const sub = await durableSubscriber('replug/mq-restart/event', 'sub-restart');
    const first = publisher('mq-restart');
    await first.start();
    await first.connected();
    first.publishEvent('device.added', { device, source: 'devfs' });
    await first.idle();
    await broker.stop();
    for (let i = 1; i <= 5; i++)
      first.publishEvent('reconnect.attempt', { target: '1209:0001', attempt: i, device });
    await first.stop();
    const second = publisher('mq-restart', { session: 4 });
    await second.start();
    second.publishEvent('device.removed', { device, source: 'sysfs' });
    expect(second.stats().queue?.depth).toBe(6);
    await broker.start();
    await second.idle(15_000);
    await until(() => new Set(sub.messages.map((m) => m.json.seq)).size >= 7, 10_000, '7 events');
    expectAllInOrder(sub.messages, 7);
    const sessions = [...new Map(sub.messages.map((m) => [m.json.seq, m.json.session])).values()];
    expect(sessions).toEqual([3, 3, 3, 3, 3, 3, 4]);
  });
});
