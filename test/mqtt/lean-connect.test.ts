/**
 * The lean connect (src/mqtt/lean-connect.ts): plain TCP takes the client class and a socket only, and
 * behaves as mqtt.connect does against a real Aedes on port 0 (URL credentials, a round trip, reconnect
 * after the broker drops the socket); every other case is sent to the full mqtt.connect.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMqtt, isPlainTcp } from '../../src/mqtt/lean-connect.js';
import { type AedesHandle, startAedes } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('isPlainTcp', () => {
  it('takes mqtt:// and tcp:// without a client certificate or proxy, nothing else', () => {
    expect(isPlainTcp('mqtt://127.0.0.1:1883', {}, {})).toBe(true);
    expect(isPlainTcp('tcp://broker.local', {}, {})).toBe(true);
    expect(isPlainTcp('mqtts://broker.local', {}, {})).toBe(false);
    expect(isPlainTcp('ws://broker.local/mqtt', {}, {})).toBe(false);
    expect(isPlainTcp('mqtt://broker.local', { cert: 'c', key: 'k' }, {})).toBe(false);
    expect(isPlainTcp('mqtt://broker.local', {}, { MQTTJS_SOCKS_PROXY: 'socks5://p:1080' })).toBe(false);
    expect(isPlainTcp('mqtt://broker.local', { socksProxy: 'socks5://p:1080' }, {})).toBe(false);
    expect(isPlainTcp('not a url', {}, {})).toBe(false);
  });
});

describe('connectMqtt on plain TCP', () => {
  async function broker(): Promise<AedesHandle & { users: string[]; drop(id: string): void }> {
    const users: string[] = [];
    const b = await startAedes({
      authenticate: (_c, username, _p, done) => {
        users.push(username ?? '');
        done(null, true);
      },
    });
    cleanups.push(() => b.close());
    const clients = (b.broker as unknown as { clients: Record<string, { conn: { destroy(): void } }> })
      .clients;
    return Object.assign(b, { users, drop: (id: string) => clients[id]?.conn.destroy() });
  }

  it('connects with the URL credentials, publishes and receives, and reconnects when dropped', async () => {
    const b = await broker();
    const url = b.url.replace('mqtt://', 'mqtt://alice:s%40cret@');
    const client = connectMqtt(url, { protocolVersion: 5, reconnectPeriod: 50, clientId: 'lean-1' });
    cleanups.push(() => client.endAsync(true));
    await new Promise((resolve) => client.once('connect', resolve));
    expect(b.users).toEqual(['alice']);
    await client.subscribeAsync('lean/#', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('lean/x', 'hello', { qos: 1 });
    expect(await got).toBe('hello');

    b.drop('lean-1');
    await new Promise((resolve) => client.once('connect', resolve));
    expect(b.users).toEqual(['alice', 'alice']);
  });

  it('options win over the URL, as with mqtt.connect', async () => {
    const b = await broker();
    const url = b.url.replace('mqtt://', 'mqtt://fromurl@');
    const client = connectMqtt(url, { username: 'fromoptions', reconnectPeriod: 50 });
    cleanups.push(() => client.endAsync(true));
    await new Promise((resolve) => client.once('connect', resolve));
    expect(b.users).toEqual(['fromoptions']);
  });
});
