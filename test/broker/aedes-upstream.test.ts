/**
 * Minimal reproductions of the aedes 2.0.0-beta.1 faults replug carries fixes for (src/broker/aedes-fixes.ts),
 * each run twice: on a bare Aedes (the fault shows: if one stops showing after an aedes upgrade, drop its
 * fix) and through startBroker (the fix holds). Real Aedes on port 0, real LevelDB, real MQTT.js.
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { openPersistence } from '../../src/broker/persistence.js';
import { tempDir } from './fixtures.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A bare aedes 2 beta, with aedes-persistence-level as upstream documents it or in memory, on port 0. */
async function bareAedes(
  storage: 'level' | 'memory' = 'level',
  { holdRetainedForEvent = false } = {},
): Promise<string> {
  const tmp = await tempDir('replug-upstream-');
  const store = storage === 'level' ? await openPersistence(tmp.dir) : undefined;
  const aedes = await Aedes.createBroker(store ? { persistence: store.persistence as never } : {});
  if (holdRetainedForEvent) {
    // Whether a LevelDB put finishes before the next publish is emitted depends on the machine's load, so a
    // timed delay only makes the race likely. Here the retained write of `devices` N waits until aedes has
    // emitted `event` N (the publish right behind it): the overtaking the agent meets under load, every run.
    // Should aedes ever run one client's publishes in order, the event cannot overtake, the hold ends after
    // 1 s and the test below fails, saying the fault (and its fix) can go.
    const emitted = new Map<string, () => void>();
    const seen = new Set<string>();
    aedes.on('publish', (packet) => {
      if (!packet.topic.endsWith('/event')) return;
      const n = packet.payload.toString();
      seen.add(n);
      emitted.get(n)?.();
    });
    const p = (
      aedes as unknown as { persistence: { storeRetained(packet: { payload: Buffer }): Promise<void> } }
    ).persistence;
    const storeRetained = p.storeRetained.bind(p);
    // The writes also run one after another: two LevelDB puts in flight may finish in either order, and
    // `devices` 5 finishing before 4 would make the exact subscriber drop 4 too (a flake seen in CI). One
    // at a time, only the event overtakes, which is the fault this reproduces.
    let previous: Promise<void> = Promise.resolve();
    p.storeRetained = (packet) => {
      const n = packet.payload.toString();
      const mine = previous.then(async () => {
        if (!seen.has(n))
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            emitted.set(n, () => {
              clearTimeout(timer);
              resolve();
            });
          });
        await storeRetained(packet);
      });
      previous = mine.catch(() => undefined);
      return mine;
    };
  }
  const server = net.createServer((s) => aedes.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
    await store?.close();
    await tmp.cleanup();
  });
  return `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function replugBroker(storage: 'level' | 'memory' = 'level'): Promise<string> {
  const tmp = await tempDir('replug-upstream-');
  const broker = await startBroker({ port: 0, ...(storage === 'level' ? { persistenceDir: tmp.dir } : {}) });
  cleanups.push(async () => {
    await broker.close();
    await tmp.cleanup();
  });
  return broker.url;
}

async function client(url: string, options: mqtt.IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** Subscribes and records payloads per topic. */
async function recorder(url: string, id: string, filter: string, options: mqtt.IClientOptions = {}) {
  const c = await client(url, { clientId: id, ...options });
  const got: { topic: string; n: number }[] = [];
  c.on('message', (topic, payload) => got.push({ topic, n: Number(payload.toString()) }));
  await c.subscribeAsync(filter, { qos: 1 });
  return {
    of: (suffix: string) => got.filter((m) => m.topic.endsWith(suffix)).map((m) => m.n),
    count: () => got.length,
  };
}

/** The agent's pattern: a retained `devices` update and an event right behind it, both QoS 1, pipelined. */
async function agentLikeBurst(url: string, n: number): Promise<void> {
  const pub = await client(url, { clientId: 'burst' });
  const acks: Promise<unknown>[] = [];
  for (let i = 1; i <= n; i++) {
    acks.push(pub.publishAsync('replug/a/devices', String(i), { qos: 1, retain: true }));
    acks.push(pub.publishAsync('replug/a/event', String(i), { qos: 1 }));
  }
  await Promise.all(acks);
}

async function settle(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
}

const N = 20;
const seq = Array.from({ length: N }, (_, i) => i + 1);

describe('aedes 2.0.0-beta.1: a retained update overtaken by an event is dropped for wildcard subscribers', () => {
  it('bare aedes + aedes-persistence-level: `replug/#` loses retained updates an exact subscriber gets', async () => {
    const url = await bareAedes('level', { holdRetainedForEvent: true });
    const wild = await recorder(url, 'wild', 'replug/#');
    const exact = await recorder(url, 'exact', 'replug/a/devices');
    await agentLikeBurst(url, N);
    await settle(() => exact.count() === N && wild.of('event').length === N);
    expect(exact.of('devices')).toEqual(seq);
    // Upstream fault: the client-side dedupe drops each overtaken retained update as a "duplicate".
    expect(wild.of('devices')).toEqual([]);
  });

  it('startBroker: every subscriber gets every update and every event, in order (v5 and 3.1.1)', async () => {
    const url = await replugBroker();
    const subs = [
      await recorder(url, 'wild5', 'replug/#', { protocolVersion: 5 }),
      await recorder(url, 'plus4', 'replug/+/#', { protocolVersion: 4 }),
      await recorder(url, 'all5', '#', {
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 60 },
      }),
      await recorder(url, 'persist4', 'replug/#', { protocolVersion: 4, clean: false }),
    ];
    await agentLikeBurst(url, N);
    await settle(() => subs.every((s) => s.count() >= 2 * N));
    for (const s of subs) {
      expect(s.of('devices')).toEqual(seq);
      expect(s.of('event')).toEqual(seq);
    }
  });
});

describe('aedes 2.0.0-beta.1: client ids and topic filters named like Object.prototype members', () => {
  it('bare aedes: CONNECT with client id `constructor` is never answered', async () => {
    const url = await bareAedes();
    const onReject = () => undefined; // aedes rejects inside registerClient; keep vitest from failing on it
    process.on('unhandledRejection', onReject);
    cleanups.push(async () => void process.off('unhandledRejection', onReject));
    await expect(
      mqtt.connectAsync(url, { clientId: 'constructor', reconnectPeriod: 0, connectTimeout: 1000 }),
    ).rejects.toThrow(/timeout/i);
  });

  it('startBroker: `constructor`, `toString` and `__proto__` connect, subscribe and receive like any name', async () => {
    const url = await replugBroker();
    for (const id of ['constructor', 'toString', '__proto__']) {
      const c = await client(url, { clientId: id, connectTimeout: 2000 });
      const got: string[] = [];
      c.on('message', (topic) => got.push(topic));
      const granted = await c.subscribeAsync(['toString', 'constructor'], { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1, 1]);
      await c.publishAsync('toString', 'x', { qos: 1 });
      await settle(() => got.length === 1);
      expect(got).toEqual(['toString']);
      await c.endAsync();
    }
  });
});

describe('aedes 2.0.0-beta.1: inbound QoS 2', () => {
  function raw(url: string) {
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume(); // read what the broker sends, so its close reaches us as 'close'
    cleanups.push(async () => void socket.destroy());
    const send = (p: mqttPacket.Packet) => socket.write(mqttPacket.generate(p));
    send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'raw',
      keepalive: 0,
    });
    return { socket, send, write: (b: Buffer) => socket.write(b) };
  }
  const publish2 = (messageId: number): mqttPacket.Packet => ({
    cmd: 'publish',
    topic: 'q2',
    payload: Buffer.from('x'),
    qos: 2,
    messageId,
    dup: false,
    retain: false,
  });
  const pubrel = (messageId: number) => mqttPacket.generate({ cmd: 'pubrel', messageId });

  it('bare aedes (in-memory store): two PUBRELs for one packet in one read reject outside any handler', async () => {
    const url = await bareAedes('memory');
    const rejections: unknown[] = [];
    const onReject = (e: unknown) => rejections.push(e);
    process.on('unhandledRejection', onReject);
    cleanups.push(async () => void process.off('unhandledRejection', onReject));
    const r = raw(url);
    await new Promise((res) => setTimeout(res, 200));
    r.send(publish2(7));
    await new Promise((res) => setTimeout(res, 200));
    r.write(Buffer.concat([pubrel(7), pubrel(7)]));
    await settle(() => rejections.length > 0, 2000);
    expect(String(rejections[0])).toMatch(/no such packet/);
  });

  it.each(['memory', 'level'] as const)(
    'startBroker (%s store): a double PUBREL is answered quietly; 1001 unreleased QoS 2 packets close the connection',
    async (storage) => {
      const url = await replugBroker(storage);
      const rejections: unknown[] = [];
      const onReject = (e: unknown) => rejections.push(e);
      process.on('unhandledRejection', onReject);
      cleanups.push(async () => void process.off('unhandledRejection', onReject));
      const r = raw(url);
      await new Promise((res) => setTimeout(res, 200));
      r.send(publish2(7));
      await new Promise((res) => setTimeout(res, 200));
      r.write(Buffer.concat([pubrel(7), pubrel(7)]));
      await new Promise((res) => setTimeout(res, 500));
      expect(rejections).toEqual([]);
      expect(r.socket.destroyed).toBe(false);

      let closed = false;
      r.socket.on('close', () => {
        closed = true;
      });
      r.write(Buffer.concat(Array.from({ length: 1001 }, (_, i) => mqttPacket.generate(publish2(100 + i)))));
      await settle(() => closed, 5000);
      expect(closed).toBe(true);
    },
  );
});
