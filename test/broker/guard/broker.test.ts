/**
 * The issue 11 rules on a real startBroker over TCP, with MQTT.js and raw sockets: each case is an attack
 * from the issue, shrunk to a count that runs in a second or two.
 */
import { once } from 'node:events';
import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../../src/broker/broker.js';
import { memoryLogger, tempDir, usersFile } from '../fixtures.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function broker(options: Parameters<typeof startBroker>[0] = {}): Promise<RunningBroker> {
  const b = await startBroker({ port: 0, ...options });
  open.push(b);
  return b;
}

interface RetainedStream {
  createRetainedStream(pattern: string): AsyncIterable<unknown>;
}

interface Outcome {
  connected: boolean;
  reasonCode?: number;
  returnCode?: number;
  reasonString?: string;
}

/** Connects once (no retries) and says how the CONNACK went, Reason String included. */
async function tryConnect(
  url: string,
  options: IClientOptions = {},
): Promise<{ outcome: Outcome; client: MqttClient }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  open.push({ close: () => client.endAsync(true) });
  const outcome = await new Promise<Outcome>((resolve) => {
    client.on('packetreceive', (p) => {
      if (p.cmd !== 'connack') return;
      const ack = p as { reasonCode?: number; returnCode?: number; properties?: { reasonString?: string } };
      const code = ack.reasonCode ?? ack.returnCode ?? 0;
      resolve({
        connected: code === 0,
        ...(ack.reasonCode !== undefined ? { reasonCode: ack.reasonCode } : {}),
        ...(ack.returnCode !== undefined ? { returnCode: ack.returnCode } : {}),
        ...(ack.properties?.reasonString ? { reasonString: ack.properties.reasonString } : {}),
      });
    });
    client.on('error', () => undefined);
    client.on('close', () => resolve({ connected: false }));
  });
  return { outcome, client };
}

function rawSocket(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  open.push({ close: async () => void s.destroy() });
  return once(s, 'connect').then(() => s);
}

describe('before authentication', () => {
  it('closes a socket announcing a 268 MB CONNECT at its header, without buffering its body', async () => {
    const b = await broker();
    const s = await rawSocket(b.address.port);
    s.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    // Keep writing: a broker that buffers would keep the socket open and take it all.
    const chunk = Buffer.alloc(64 * 1024);
    const pump = setInterval(() => s.writable && s.write(chunk), 1);
    // Not events.once(): it rejects on 'error', and a socket reset while we write gets ECONNRESET first
    // (seen under load). The close is what the test waits for, whichever way it comes.
    await new Promise((resolve) => s.once('close', resolve));
    clearInterval(pump);
    expect(b.guardCounters().refusedHeader).toBe(1);
  });

  it('refuses a packet above packet-bytes after CONNECT (MQTT 5: DISCONNECT 0x95)', async () => {
    const b = await broker({ limits: { packetBytes: 4096 } });
    const { outcome, client } = await tryConnect(b.url, { protocolVersion: 5 });
    expect(outcome.connected).toBe(true);
    const disconnect = new Promise<number | undefined>((resolve) =>
      client.on(
        'packetreceive',
        (p) => p.cmd === 'disconnect' && resolve((p as { reasonCode?: number }).reasonCode),
      ),
    );
    client.publish('replug/a/big', Buffer.alloc(10_000), { qos: 1, retain: true });
    expect(await disconnect).toBe(0x95);
    const retained: string[] = [];
    const { client: reader } = await tryConnect(b.url);
    reader.on('message', (t) => retained.push(t));
    await reader.subscribeAsync('replug/#');
    await reader.publishAsync('replug/a/marker', 'm', { qos: 1 });
    await once(reader as never, 'message');
    expect(retained).toEqual(['replug/a/marker']);
  });

  it('keeps at most `connecting` sockets without CONNACK, closing the oldest: a login still gets in', async () => {
    const b = await broker({ limits: { connecting: 20 } });
    const idle = await Promise.all(Array.from({ length: 60 }, () => rawSocket(b.address.port)));
    const { outcome } = await tryConnect(b.url);
    expect(outcome.connected).toBe(true);
    expect(b.guardCounters().evicted).toBeGreaterThanOrEqual(40);
    expect(idle.filter((s) => !s.destroyed && s.readyState === 'open').length).toBeLessThanOrEqual(60);
    expect(b.guardCounters().connecting).toBeLessThanOrEqual(20);
  });
});

describe('after authentication', () => {
  it('reserves replug-<id> for agent <id>: an observer is refused with the rule in its Reason String', async () => {
    const t = await tempDir('replug-guard-');
    open.push({ close: t.cleanup });
    const file = await usersFile(t.dir, [
      { username: 'pi-a', role: 'agent', password: 'pa' },
      { username: 'ha', role: 'observer', password: 'ph' },
    ]);
    const { log, lines } = await memoryLogger();
    const b = await broker({ usersFile: file, log });
    const agent = await tryConnect(b.url, {
      clientId: 'replug-pi-a',
      username: 'pi-a',
      password: 'pa',
      protocolVersion: 5,
    });
    expect(agent.outcome.connected).toBe(true);
    const thief = await tryConnect(b.url, {
      clientId: 'replug-pi-a',
      username: 'ha',
      password: 'ph',
      protocolVersion: 5,
    });
    expect(thief.outcome).toEqual({
      connected: false,
      reasonCode: 0x87,
      reasonString: 'client id replug-pi-a belongs to agent pi-a; observer ha may not use it',
    });
    expect(agent.client.connected).toBe(true);
    const old = await tryConnect(b.url, { clientId: 'replug-pi-a', protocolVersion: 4 });
    expect(old.outcome).toEqual({ connected: false, returnCode: 5 });
    expect(
      lines().some((l) => l.rule === 'client-id' && String(l.msg).includes('belongs to agent pi-a')),
    ).toBe(true);
  });

  it('an agent whose id is not its username is told so', async () => {
    const t = await tempDir('replug-guard-');
    open.push({ close: t.cleanup });
    const file = await usersFile(t.dir, [{ username: 'pi-a', role: 'agent', password: 'pa' }]);
    const b = await broker({ usersFile: file });
    const { outcome } = await tryConnect(b.url, {
      clientId: 'replug-pi-b',
      username: 'pi-a',
      password: 'pa',
      protocolVersion: 5,
      will: { topic: 'replug/pi-b/status', payload: Buffer.from('{}'), qos: 1, retain: true },
    });
    expect(outcome.reasonCode).toBe(0x87);
    expect(outcome.reasonString).toContain("an agent's id must be its username (pi-a)");
  });

  it('with a users file, an anonymous loopback client may read but not write', async () => {
    const t = await tempDir('replug-guard-');
    open.push({ close: t.cleanup });
    const file = await usersFile(t.dir, [{ username: 'pi-a', role: 'agent', password: 'pa' }]);
    const b = await broker({ usersFile: file });
    const { outcome, client } = await tryConnect(b.url, { protocolVersion: 5 });
    expect(outcome.connected).toBe(true);
    expect((await client.subscribeAsync('replug/#'))[0]?.qos).toBe(0);
    const refused = await client
      .publishAsync('replug/pi-a/status', '{"state":"online"}', { qos: 1, retain: true })
      .then(
        () => 'accepted',
        (err: { code?: number }) => err.code,
      );
    expect(refused).toBe(0x87);
  });

  it('the embedded agent logs in with its one-time credential; nobody else gets its id', async () => {
    const b = await broker({ localAgent: { username: 'pi-k', password: 'once-only-secret' } });
    const self = await tryConnect(b.url, {
      clientId: 'replug-pi-k',
      username: 'pi-k',
      password: 'once-only-secret',
    });
    expect(self.outcome.connected).toBe(true);
    const anon = await tryConnect(b.url, { clientId: 'replug-pi-k' });
    expect(anon.outcome).toEqual({ connected: false, returnCode: 5 });
    expect(self.client.connected).toBe(true);
    const other = await tryConnect(b.url, { clientId: 'replug-watch-1' });
    expect(other.outcome.connected).toBe(true);
  });

  it('refuses retained publishes past the quota: MQTT 5 PUBACK 0x97, 3.1.1 connection closed', async () => {
    const t = await tempDir('replug-guard-');
    open.push({ close: t.cleanup });
    const b = await broker({ persistenceDir: t.dir, limits: { retainedTopics: 3 } });
    const { client } = await tryConnect(b.url, { protocolVersion: 5 });
    for (const n of [1, 2, 3]) await client.publishAsync(`replug/a/t${n}`, 'x', { qos: 1, retain: true });
    const fourth = await client.publishAsync('replug/a/t4', 'x', { qos: 1, retain: true }).then(
      () => 'accepted',
      (err: { code?: number }) => err.code,
    );
    expect(fourth).toBe(0x97);
    await client.publishAsync('replug/a/t1', 'y', { qos: 1, retain: true });
    await client.publishAsync('replug/b/t1', 'x', { qos: 1, retain: true });
    const { client: v3 } = await tryConnect(b.url, { protocolVersion: 4 });
    v3.publish('replug/a/t5', 'x', { qos: 1, retain: true });
    await once(v3 as never, 'close');
    await b.close();
    const again = await broker({ persistenceDir: t.dir, limits: { retainedTopics: 3 } });
    const { client: after } = await tryConnect(again.url, { protocolVersion: 5 });
    const refused = await after
      .publishAsync('replug/a/t6', 'x', { qos: 1, retain: true })
      .catch((e: { code?: number }) => e.code);
    expect(refused).toBe(0x97);
  });

  it('counts retained messages aedes publishes itself, as it does the wills a crashed broker left behind', async () => {
    const b = await broker({ limits: { retainedTopics: 2 } });
    // A left-behind will is published by aedes with no client (authorizePublish never sees it).
    const will = (topic: string, payload: string) =>
      new Promise<void>((resolve, reject) =>
        b.aedes.publish(
          { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: true, dup: false },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    await will('replug/a/status', '{"state":"offline"}');
    await will('replug/a/other', 'x');
    const { client } = await tryConnect(b.url, { protocolVersion: 5 });
    const publish = (topic: string) =>
      client.publishAsync(topic, 'x', { qos: 1, retain: true }).then(
        () => 'accepted',
        (err: { code?: number }) => err.code,
      );
    expect(await publish('replug/a/third')).toBe(0x97);
    await will('replug/a/other', '');
    expect(await publish('replug/a/third')).toBe('accepted');
  });

  it('frees quota when the store drops an expired retained message (MQTT 5 Message Expiry Interval)', async () => {
    const b = await broker({ limits: { retainedTopics: 2 } });
    const { client } = await tryConnect(b.url, { protocolVersion: 5 });
    const retain = { qos: 1 as const, retain: true };
    await client.publishAsync('replug/a/short', 'x', { ...retain, properties: { messageExpiryInterval: 1 } });
    await client.publishAsync('replug/a/long', 'x', retain);
    const third = () =>
      client.publishAsync('replug/a/third', 'x', retain).then(
        () => 'accepted',
        (err: { code?: number }) => err.code,
      );
    expect(await third()).toBe(0x97);
    // aedes deletes an expired retained message when a subscription would deliver it: subscribe until the
    // store no longer holds it (a condition, however long the second takes here).
    const { client: reader } = await tryConnect(b.url, { protocolVersion: 5 });
    const held = async () => {
      const store = (b.aedes as unknown as { persistence: RetainedStream }).persistence;
      for await (const _ of store.createRetainedStream('replug/a/short')) return true;
      return false;
    };
    while (await held()) {
      await reader.subscribeAsync('replug/a/short', { qos: 0 });
      await reader.unsubscribeAsync('replug/a/short');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await third()).toBe('accepted');
  });

  it('refuses topics containing U+0000 [MQTT-1.5.4-2]', async () => {
    const b = await broker();
    const { client } = await tryConnect(b.url, { protocolVersion: 5 });
    const refused = await client
      .publishAsync('replug/a\u0000b', 'x', { qos: 1 })
      .catch((e: { code?: number }) => e.code);
    expect(refused).toBe(0x87);
    const sub = await client.subscribeAsync('replug/\u0000/#').then(
      () => 'granted',
      (err: Error) => err.message,
    );
    expect(sub).toMatch(/Not authorized/);
  });

  it('drops QoS 0 to a client that does not read, then disconnects it; others are served throughout', async () => {
    const { log, lines } = await memoryLogger();
    const b = await broker({ limits: { outgoingBytes: 64 * 1024, slowConsumerMs: 300 }, log });
    const { client: slow } = await tryConnect(b.url);
    await slow.subscribeAsync('load/#');
    (slow as unknown as { stream: net.Socket }).stream.pause();
    const { client: fast } = await tryConnect(b.url);
    await fast.subscribeAsync('load/#');
    let got = 0;
    fast.on('message', () => got++);
    const payload = Buffer.alloc(16 * 1024);
    const gone = new Promise<void>((resolve) =>
      b.aedes.on('clientDisconnect', (c) => c.id === slow.options.clientId && resolve()),
    );
    let sent = 0;
    const { client: pub } = await tryConnect(b.url);
    while (!lines().some((l) => l.rule === 'outgoing')) {
      await pub.publishAsync(`load/${sent++}`, payload, { qos: 0 });
      await new Promise((r) => setTimeout(r, 2));
    }
    await gone;
    expect(b.guardCounters().droppedQoS0).toBeGreaterThan(0);
    await pub.publishAsync('load/last', 'done', { qos: 1 });
    while (got < sent) await new Promise((r) => setTimeout(r, 10));
    expect(got).toBeGreaterThanOrEqual(sent);
  });

  it('lets a client go that stopped reading even when nothing more is sent to it', async () => {
    const b = await broker({ limits: { outgoingBytes: 64 * 1024, slowConsumerMs: 300 } });
    const { client: slow } = await tryConnect(b.url);
    await slow.subscribeAsync('burst/#');
    (slow as unknown as { stream: net.Socket }).stream.pause();
    const gone = new Promise<void>((resolve) =>
      b.aedes.on('clientDisconnect', (c) => c.id === slow.options.clientId && resolve()),
    );
    const { client: pub } = await tryConnect(b.url);
    // One burst, about 5 MB: far past what the paused socket and kernel buffers take, then silence.
    for (let i = 0; i < 320; i++) pub.publish(`burst/${i}`, Buffer.alloc(16 * 1024), { qos: 0 });
    await pub.publishAsync('other/done', 'x', { qos: 1 });
    await gone;
    expect(b.guardCounters().droppedQoS0).toBeGreaterThan(0);
  });
});
