import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPublisher, type Publisher, type PublisherOptions } from '../../src/mqtt/publisher.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import { parseTopic } from '../../src/mqtt/topics.js';
import { FakeClock } from '../fakes/clock.js';
import { device, health, info, snapshot } from './fixtures.js';
import { type AedesHandle, type Recorder, record, startAedes, tempDir } from './helpers.js';

let aedes: AedesHandle;
let state: { dir: string; cleanup(): Promise<void> };
const cleanups: (() => Promise<unknown>)[] = [];

function publisher(extra: Partial<PublisherOptions> = {}): Publisher {
  const p = createPublisher({
    url: aedes.url,
    agent: 'pi-kitchen',
    session: 3,
    version: '0.1.0',
    runtime: 'native',
    stateDir: state.dir,
    reconnectPeriodMs: 100,
    ...extra,
  });
  cleanups.push(() => p.stop());
  return p;
}

async function recorder(filter = 'replug/#'): Promise<Recorder> {
  const r = await record(aedes.url, filter);
  cleanups.push(() => r.close());
  return r;
}

function validated(r: Recorder): void {
  for (const m of r.messages) {
    const parsed = parseTopic(m.topic);
    if (!parsed) continue;
    expect(validatePayload(parsed.kind, m.json), `${m.topic} ${JSON.stringify(m.json)}`).toEqual({
      ok: true,
    });
  }
}

beforeEach(async () => {
  aedes = await startAedes();
  state = await tempDir('replug-pub-');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await aedes.close();
  await state.cleanup();
});

describe('publisher against Aedes', () => {
  it('speaks MQTT 5 to a broker that offers it (Aedes 2)', async () => {
    const p = publisher();
    p.setInfo(info);
    await p.start();
    await p.connected();
    expect(p.protocolVersion).toBe(5);
    const r = await recorder();
    await r.until((m) => m.some((x) => x.topic === 'replug/pi-kitchen/info'), 5000, 'the retained info');
    const infoMsg = r.messages.find((m) => m.topic === 'replug/pi-kitchen/info');
    expect(infoMsg?.json.broker).toMatchObject({ protocolVersion: 5 });
  });

  it('falls back from MQTT 5 to 3.1.1 (Aedes 1.2) and publishes the retained census, all schema-valid', async () => {
    await aedes.close();
    aedes = await startAedes({}, { v311Only: true });
    const p = publisher();
    p.setInfo(info);
    p.setDevices([device]);
    p.setTargetState(snapshot);
    p.setHealth(health);
    await p.start();
    await p.connected();
    expect(p.protocolVersion).toBe(4);
    const r = await recorder();
    await r.until((m) => m.length >= 5, 5000, 'the retained census');
    const kinds = r.messages.map((m) => parseTopic(m.topic)?.kind).sort();
    expect(kinds).toEqual(['devices', 'health', 'info', 'status', 'target']);
    expect(r.messages.every((m) => m.retain)).toBe(true);
    const status = r.messages.find((m) => m.topic === 'replug/pi-kitchen/status');
    expect(status?.json).toMatchObject({ state: 'online', session: 3, version: '0.1.0' });
    const infoMsg = r.messages.find((m) => m.topic === 'replug/pi-kitchen/info');
    expect(infoMsg?.json.broker).toMatchObject({ protocolVersion: 4 });
    expect(r.messages.find((m) => m.topic.endsWith('/target/1209-0001-abc123/state'))).toBeDefined();
    validated(r);
  });

  it('delivers events in order with consecutive seq and empties the queue', async () => {
    const p = publisher();
    await p.start();
    await p.connected();
    const r = await recorder('replug/pi-kitchen/event');
    for (let i = 1; i <= 50; i++)
      p.publishEvent('reconnect.attempt', { target: '1209:0001', attempt: i, device });
    await p.idle();
    await r.until((m) => m.length >= 50);
    expect(r.messages.map((m) => m.json.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(r.messages.every((m) => !m.retain && m.json.session === 3)).toBe(true);
    expect(p.stats().queue).toMatchObject({ depth: 0, dropped: 0, capacity: 10_000 });
    validated(r);
  });

  it('an abruptly destroyed connection yields the retained offline will with this session', async () => {
    const p = publisher({ reconnectPeriodMs: 60_000 });
    await p.start();
    await p.connected();
    p.mqttClient?.stream.destroy();
    const r = await recorder('replug/pi-kitchen/status');
    await r.until((m) => m.some((x) => x.json.state === 'offline'), 5000, 'the will');
    const will = r.messages.find((x) => x.json.state === 'offline');
    expect(will?.json).toMatchObject({ state: 'offline', session: 3 });
    expect(will?.json.reason).toBeUndefined();
    expect(validatePayload('status', will?.json)).toEqual({ ok: true });
  });

  it('a clean stop publishes offline with reason stopped', async () => {
    const p = publisher();
    await p.start();
    await p.connected();
    await p.stop();
    const r = await recorder('replug/pi-kitchen/status');
    await r.until((m) => m.length >= 1);
    expect(r.messages[0]?.json).toMatchObject({ state: 'offline', reason: 'stopped', session: 3 });
  });

  it('queues while the broker is unreachable and logs the outage once', async () => {
    const port = aedes.port;
    await aedes.close();
    const lines: Record<string, unknown>[] = [];
    const { pino } = await import('pino');
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const p = publisher({ log, url: `mqtt://127.0.0.1:${port}` });
    await p.start();
    for (let i = 1; i <= 5; i++)
      p.publishEvent('reconnect.attempt', { target: '1209:0001', attempt: i, device });
    await new Promise((r) => setTimeout(r, 800)); // several 100 ms retries
    expect(p.stats().queue?.depth).toBe(5);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.msg)).toMatch(/cannot reach the broker mqtt:\/\/127\.0\.0\.1:\d+; queueing/);
  });

  it.each([
    { name: 'MQTT 5: reason code 0x86', v311Only: false, reasonCode: 0x86 },
    { name: 'MQTT 3.1.1: return code 4', v311Only: true, reasonCode: 4 },
  ])('refuses bad credentials with REPLUG_MQTT_AUTH once, keeping the code ($name)', async (c) => {
    await aedes.close();
    aedes = await startAedes(
      {
        authenticate: (_c, _u, _p, done) => {
          const err = Object.assign(new Error('bad user'), { returnCode: 4 as const });
          done(err, null);
        },
      },
      { v311Only: c.v311Only },
    );
    const p = publisher({ url: aedes.url, username: 'x', password: 'y' });
    const errors: { code: string; details?: Record<string, unknown> }[] = [];
    p.on('error', (e) => errors.push(e));
    await p.start();
    await new Promise((r) => setTimeout(r, 700));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'REPLUG_MQTT_AUTH', details: { reasonCode: c.reasonCode } });
  });

  it('a discovery config sent on the first connect names the targets it was given, before any state', async () => {
    const p = publisher();
    p.startDiscovery(
      {},
      () => ({ 'replug-pi-kitchen-1209-0002-up': 'binary_sensor' }),
      () => [snapshot],
    );
    const r = await recorder('homeassistant/device/#');
    await p.start();
    await r.until((m) => m.length >= 1, 5000, 'discovery');
    const cmps = r.messages[0]?.json.cmps as Record<string, { p: string; state_topic?: string }>;
    // Before: the targets came from the states published so far, none yet, so this config told HA of the
    // removal and named no kept target.
    expect(cmps['replug-pi-kitchen-1209-0001-abc123-up']).toMatchObject({ p: 'binary_sensor' });
    expect(cmps['replug-pi-kitchen-1209-0002-up']).toEqual({ p: 'binary_sensor' });
  });

  it('sends Home Assistant device discovery, and again when HA says online', async () => {
    const p = publisher({ homeassistant: {} });
    p.setTargetState(snapshot);
    const r = await recorder('homeassistant/device/#');
    await p.start();
    await p.connected();
    await r.until((m) => m.length >= 1, 5000, 'discovery');
    const config = r.messages[0];
    expect(config?.topic).toBe('homeassistant/device/replug-pi-kitchen/config');
    expect(config?.json).toMatchObject({
      dev: { ids: ['replug-pi-kitchen'] },
      o: { name: 'replug' },
      availability: [{ topic: 'replug/pi-kitchen/status', payload_available: 'online' }],
    });
    const cmps = config?.json.cmps as Record<string, { p: string; state_topic: string }>;
    expect(cmps['replug-pi-kitchen-1209-0001-abc123-up']).toMatchObject({
      p: 'binary_sensor',
      state_topic: 'replug/pi-kitchen/target/1209-0001-abc123/state',
    });
    await new Promise((res) => setTimeout(res, 100)); // the subscription to homeassistant/status is in place
    await r.client.publishAsync('homeassistant/status', 'online');
    await r.until((m) => m.length >= 2, 5000, 'discovery re-sent after the HA birth message');
  });
});

describe('publisher settings', () => {
  it('rejects a bad URL with one REPLUG_MQTT_URL line, without echoing the password', () => {
    for (const url of ['localhost:1883', 'http://h', 'mqtt://', 'not a url']) {
      expect(() => publisher({ url }), url).toThrow(expect.objectContaining({ code: 'REPLUG_MQTT_URL' }));
    }
    expect(() => publisher({ url: 'ftp://u:secret@h' })).toThrow(expect.not.stringContaining('secret'));
  });

  it('names an unreadable CA file', () => {
    const missing = path.join(state.dir, 'nope.pem');
    expect(() => publisher({ url: 'mqtts://127.0.0.1:8883', ca: missing })).toThrow(
      expect.objectContaining({ code: 'REPLUG_MQTT_CONNECT', message: expect.stringContaining('nope.pem') }),
    );
    writeFileSync(missing, 'x');
    expect(() => publisher({ url: 'mqtts://127.0.0.1:8883', ca: missing })).not.toThrow();
  });

  it('uses the injected clock for ts', async () => {
    const clock = new FakeClock(Date.UTC(2030, 0, 1));
    const p = publisher({ clock });
    await p.start();
    const ev = p.publishEvent('device.added', { device, source: 'devfs' });
    expect(ev.ts).toBe(Date.UTC(2030, 0, 1));
  });
});
