/**
 * The MQTT link of `replug request` (issue 18): one MQTT.js client, MQTT 5 with a fall back to 3.1.1,
 * subscriptions that resolve at their SUBACK (with what the broker granted), QoS 1 publishes that resolve
 * at their PUBACK. It lives in src/mqtt because only src/mqtt and src/broker import the mqtt package.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ErrorCodes, ReplugError } from '../errors.js';
import { isUnsupportedProtocol } from './connect.js';
import { parseBrokerUrl } from './url.js';

export interface RequesterSettings {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  cafile?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  connectTimeoutMs: number;
}

export interface RequesterMessage {
  topic: string;
  payload: Buffer;
  retained: boolean;
  correlationData?: Buffer | undefined;
}

export interface Requester {
  readonly redacted: string;
  readonly protocolVersion: 4 | 5;
  /** Resolves with the filters the broker refused (a SUBACK failure code). */
  subscribe(filters: readonly string[]): Promise<string[]>;
  publish(topic: string, payload: string, correlationData?: Buffer): Promise<void>;
  onMessage(fn: (m: RequesterMessage) => void): void;
  close(): Promise<void>;
}

function options(s: RequesterSettings, protocolVersion: 4 | 5): IClientOptions {
  const { url } = parseBrokerUrl(s.url);
  const read = (f: string | undefined) => (f ? readFileSync(f) : undefined);
  const ca = read(s.cafile);
  const cert = read(s.cert);
  const key = read(s.key);
  const username = s.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = s.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  return {
    protocolVersion,
    clientId: `replug-request-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: s.connectTimeoutMs,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

function connectOnce(href: string, o: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(href, o);
    const fail = (err: Error) => {
      c.end(true);
      reject(err);
    };
    c.once('connect', () => {
      c.off('error', fail);
      c.off('close', closed);
      resolve(c);
    });
    const closed = () => fail(new Error('connection closed before CONNACK'));
    c.once('error', fail);
    c.once('close', closed);
  });
}

export async function openRequester(s: RequesterSettings): Promise<Requester> {
  const { href, redacted } = parseBrokerUrl(s.url);
  let version: 4 | 5 = 5;
  let client: MqttClient;
  try {
    client = await connectOnce(href, options(s, 5)).catch((err: Error & { code?: unknown }) => {
      if (typeof err.code !== 'number' || !isUnsupportedProtocol(err.code)) throw err;
      version = 4;
      return connectOnce(href, options(s, 4));
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ReplugError(ErrorCodes.MQTT_CONNECT, `cannot connect to ${redacted}: ${message}`, {
      hint: 'check --mqtt, the user name and password (an operator of the broker), and that the broker runs',
      cause: err,
    });
  }
  return {
    redacted,
    protocolVersion: version,
    async subscribe(filters) {
      const granted = await client.subscribeAsync([...filters], { qos: 1 });
      return granted.filter((g) => g.qos >= 0x80).map((g) => g.topic);
    },
    async publish(topic, payload, correlationData) {
      const properties = version === 5 && correlationData ? { properties: { correlationData } } : {};
      await client.publishAsync(topic, payload, { qos: 1, retain: false, ...properties });
    },
    onMessage(fn) {
      client.on('message', (topic, payload, packet) =>
        fn({
          topic,
          payload,
          retained: packet.retain === true,
          correlationData: packet.properties?.correlationData,
        }),
      );
    },
    async close() {
      await client.endAsync();
    },
  };
}
