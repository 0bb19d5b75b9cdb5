/**
 * startBroker speaks MQTT 5 and 3.1.1 (issue 14), checked with real MQTT.js clients of both versions:
 * reason codes on refusals, properties passed through (live, retained, queued for an offline session),
 * will delay, message expiry, the session-expiry cap, and a Home-Assistant-like durable session.
 * Each case runs with the in-memory store and with the on-disk one (aedes-persistence-level).
 */
import { once } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_SESSION_EXPIRY_S, type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { tempDir, usersFile } from './fixtures.js';

type Received = { topic: string; payload: string; retain: boolean; properties: Record<string, unknown> };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function connect(url: string, options: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  cleanups.push(() => c.endAsync(true));
  return c;
}

type Connack = { sessionPresent: boolean; properties?: { sessionExpiryInterval?: number } };

/** Like connect(), with the CONNACK the client got. */
async function connectAck(url: string, options: IClientOptions): Promise<[MqttClient, Connack]> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  cleanups.push(() => c.endAsync(true));
  const [connack] = (await once(c as never, 'connect')) as [Connack];
  return [c, connack];
}

function record(c: MqttClient): Received[] {
  const got: Received[] = [];
  c.on('message', (topic, payload, packet) =>
    got.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      properties: (packet.properties ?? {}) as Record<string, unknown>,
    }),
  );
  return got;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const v5Props = {
  contentType: 'application/json',
  userProperties: { agent: 'pi-kitchen', session: '7' },
};

describe.each(['memory', 'level'] as const)('startBroker, MQTT 5 and 3.1.1 (%s store)', (storage) => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let broker: RunningBroker;
  let users: string;
  beforeAll(async () => {
    tmp = await tempDir('replug-mqtt5-');
    users = await usersFile(tmp.dir, [
      { username: 'a', role: 'agent', password: 'pw-a' },
      { username: 'dash', role: 'observer', password: 'pw-dash' },
    ]);
    broker = await startBroker({
      port: 0,
      usersFile: users,
      maxSessionExpiryS: 600,
      ...(storage === 'level' ? { persistenceDir: tmp.dir } : {}),
    });
  });
  afterAll(async () => {
    await broker?.close();
    await tmp?.cleanup();
  });

  it('refuses bad credentials with 0x86 (v5) and return code 4 (v3.1.1), and says why', async () => {
    const v5 = mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      username: 'a',
      password: 'wrong',
      reconnectPeriod: 0,
    });
    await expect(v5).rejects.toMatchObject({ code: 0x86 });
    const v4 = mqtt.connectAsync(broker.url, {
      protocolVersion: 4,
      username: 'a',
      password: 'wrong',
      reconnectPeriod: 0,
    });
    await expect(v4).rejects.toMatchObject({ code: 4 });
  });

  it('refuses an agent will under another root with 0x87 (v5) and return code 5 (v3.1.1)', async () => {
    const will = { topic: 'replug/b/status', payload: Buffer.from('x'), qos: 1 as const, retain: true };
    const base = { username: 'a', password: 'pw-a', reconnectPeriod: 0, will };
    await expect(mqtt.connectAsync(broker.url, { ...base, protocolVersion: 5 })).rejects.toMatchObject({
      code: 0x87,
    });
    await expect(mqtt.connectAsync(broker.url, { ...base, protocolVersion: 4 })).rejects.toMatchObject({
      code: 5,
    });
  });

  it('v5: a publish outside the ACL gets PUBACK 0x87 and the connection stays; 3.1.1: the connection is closed', async () => {
    const v5 = await connect(broker.url, { protocolVersion: 5, username: 'a', password: 'pw-a' });
    await expect(v5.publishAsync('replug/b/x', '1', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    expect(v5.connected).toBe(true);
    await v5.publishAsync('replug/a/x', '1', { qos: 1 });

    const v4 = await connect(broker.url, { protocolVersion: 4, username: 'a', password: 'pw-a' });
    const closed = new Promise<void>((r) => v4.once('close', () => r()));
    v4.publish('replug/b/x', '1', { qos: 1 });
    await closed;
  });

  it('refuses a subscription outside the ACL with SUBACK 0x87 (v5) and 0x80 (v3.1.1), the rest granted', async () => {
    for (const [protocolVersion, refused] of [
      [5, 0x87],
      [4, 0x80],
    ] as const) {
      const c = await connect(broker.url, { protocolVersion, username: 'a', password: 'pw-a' });
      // MQTT.js turns a v5 SUBACK with a failure code into an error that carries the packet.
      const suback = await c
        .subscribeAsync(['replug/#', 'replug/a/#'], { qos: 1 })
        .then((granted) => granted.map((g) => g.qos))
        .catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted);
      expect(suback).toEqual([refused, 1]);
      expect(c.connected).toBe(true);
    }
  });

  it('passes user properties and content type through, live and retained; 3.1.1 subscribers get the payload', async () => {
    const topic = `replug/a/devices-${storage}`;
    const live5 = await connect(broker.url, { protocolVersion: 5 });
    const live4 = await connect(broker.url, { protocolVersion: 4 });
    const got5 = record(live5);
    const got4 = record(live4);
    await live5.subscribeAsync(topic, { qos: 1 });
    await live4.subscribeAsync(topic, { qos: 1 });
    const pub = await connect(broker.url, { protocolVersion: 5, username: 'a', password: 'pw-a' });
    await pub.publishAsync(topic, '{"n":1}', { qos: 1, retain: true, properties: v5Props });
    await until(() => got5.length === 1 && got4.length === 1);
    expect(got5[0]?.properties).toMatchObject(v5Props);
    expect(got4[0]?.payload).toBe('{"n":1}');

    const late = await connect(broker.url, { protocolVersion: 5 });
    const gotLate = record(late);
    await late.subscribeAsync(topic, { qos: 1 });
    await until(() => gotLate.length === 1);
    expect(gotLate[0]).toMatchObject({ retain: true, payload: '{"n":1}', properties: v5Props });
  });

  it('honours message expiry: an expired event is not delivered to a session that comes back later', async () => {
    const id = `expiry-${storage}`;
    const sessionOpts = {
      protocolVersion: 5 as const,
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const sub = await connect(broker.url, sessionOpts);
    await sub.subscribeAsync('replug/a/event', { qos: 1 });
    await sub.endAsync();
    const pub = await connect(broker.url, { protocolVersion: 5, username: 'a', password: 'pw-a' });
    await pub.publishAsync('replug/a/event', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('replug/a/event', 'long', {
      qos: 1,
      properties: { messageExpiryInterval: 3600, ...v5Props },
    });
    await new Promise((r) => setTimeout(r, 2100));
    const back = await connect(broker.url, { ...sessionOpts, clean: false });
    const got = record(back);
    await until(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.map((m) => m.payload)).toEqual(['long']);
    // Queued for an offline session, the message keeps its properties and its remaining lifetime.
    expect(got[0]?.properties).toMatchObject(v5Props);
    expect(got[0]?.properties.messageExpiryInterval).toBeLessThanOrEqual(3600);
  });

  it('publishes a will only after its delay, and not at all when the client is back in time', async () => {
    const watcher = await connect(broker.url, { protocolVersion: 5 });
    const got = record(watcher);
    await watcher.subscribeAsync('replug/a/status', { qos: 1 });
    const agentOpts = (id: string): IClientOptions => ({
      protocolVersion: 5,
      clientId: id,
      username: 'a',
      password: 'pw-a',
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: {
        topic: 'replug/a/status',
        payload: Buffer.from(`offline ${id}`),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1, ...v5Props },
      },
    });
    const gone = await connect(broker.url, agentOpts(`will-gone-${storage}`));
    const blip = await connect(broker.url, agentOpts(`will-blip-${storage}`));
    const lostAt = Date.now();
    (gone.stream as { destroy(): void }).destroy();
    (blip.stream as { destroy(): void }).destroy();
    await connect(broker.url, agentOpts(`will-blip-${storage}`)); // back within the delay: no will
    await until(() => got.length >= 1);
    const delay = Date.now() - lostAt;
    await new Promise((r) => setTimeout(r, 1500));
    expect(got.map((m) => m.payload)).toEqual([`offline will-gone-${storage}`]);
    expect(delay).toBeGreaterThanOrEqual(900);
    expect(got[0]?.properties).toMatchObject(v5Props);
  });

  it(`cuts a session expiry above the broker limit and says so in CONNACK (default ${DEFAULT_MAX_SESSION_EXPIRY_S} s)`, async () => {
    const [, connack] = await connectAck(broker.url, {
      protocolVersion: 5,
      clientId: `long-${storage}`,
      clean: false,
      properties: { sessionExpiryInterval: 0xffffffff },
    });
    expect(connack.properties?.sessionExpiryInterval).toBe(600);
    const [, within] = await connectAck(broker.url, {
      protocolVersion: 5,
      clientId: `short-${storage}`,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    expect(within.properties?.sessionExpiryInterval).toBeUndefined();
  });

  it('Home-Assistant-like: a v5 client with clean start false and a session expiry gets its queued QoS 1 messages, in order', async () => {
    const ha = {
      protocolVersion: 5 as const,
      clientId: `ha-${storage}`,
      username: 'dash',
      password: 'pw-dash',
      clean: false,
      properties: { sessionExpiryInterval: 120 },
    };
    const first = await connect(broker.url, ha);
    await first.subscribeAsync('replug/+/ha-event', { qos: 1 });
    const firstGot = record(first);
    const agent = await connect(broker.url, { protocolVersion: 5, username: 'a', password: 'pw-a' });
    await agent.publishAsync('replug/a/ha-event', '1', { qos: 1 });
    await until(() => firstGot.length === 1);
    await first.endAsync();
    for (let i = 2; i <= 30; i++)
      await agent.publishAsync('replug/a/ha-event', String(i), { qos: 1, properties: v5Props });
    const [back, connack] = await connectAck(broker.url, ha);
    const got = record(back);
    expect(connack.sessionPresent).toBe(true);
    for (let i = 31; i <= 40; i++) await agent.publishAsync('replug/a/ha-event', String(i), { qos: 1 });
    await until(() => got.length >= 39);
    expect(got.map((m) => Number(m.payload))).toEqual(Array.from({ length: 39 }, (_, i) => i + 2));
    expect(got[0]?.properties).toMatchObject(v5Props);
  });
});
