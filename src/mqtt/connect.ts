/**
 * Turns the agent's broker settings into MQTT.js client options: URL validation, credentials, TLS files
 * read up front (so a typo fails at start with one line, not as a TLS error on every retry), clientId, the
 * last will, and the MQTT 5 extras. Pure apart from the injected readFile.
 */
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { buildStatus, encodePayload } from './payloads.js';
import { agentTopics } from './topics.js';
import { parseBrokerUrl } from './url.js';

export type ProtocolVersion = 4 | 5;

export interface BrokerSettings {
  /** mqtt://, mqtts://, ws:// or wss://; credentials in the URL are accepted. */
  url: string;
  username?: string;
  password?: string;
  /** PEM file paths. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Default true; false only for lab brokers with self-signed certificates and no CA at hand. */
  rejectUnauthorized?: boolean;
}

export interface ConnectSettings extends BrokerSettings {
  agent: string;
  session: number;
  version?: string;
  /** runtime.kind for the MQTT 5 user property (native, docker, ...). */
  runtime: string;
  /**
   * MQTT 5 will delay (s): a reconnect within it suppresses the will, so a network blip does not flap
   * `offline`. The session expiry is set to the same value because the broker ends a session, and sends
   * its will at once, when the session expiry is 0 (MQTT 5 §3.1.3.2.2). Default 2.
   */
  willDelayS?: number;
  connectTimeoutMs?: number;
  reconnectPeriodMs?: number;
  keepaliveS?: number;
}

export { type BrokerUrl, parseBrokerUrl } from './url.js';

export type ReadFile = (path: string) => Buffer;

function readPem(which: string, file: string | undefined, readFile: ReadFile): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFile(file);
  } catch (err) {
    throw new ReplugError(
      ErrorCodes.MQTT_CONNECT,
      `cannot read the MQTT ${which} file ${file} (${errnoOf(err) ?? String(err)})`,
      {
        hint: 'check the path and its permissions',
        cause: err,
      },
    );
  }
}

export function clientId(agent: string): string {
  return `replug-${agent}`;
}

/**
 * MQTT.js options for one protocol version. Throws ReplugError (MQTT_URL, MQTT_CONNECT) on bad settings.
 * `now` becomes the will's `ts`: the broker sends the will verbatim later, so it says when the agent
 * registered it (the session counter, not ts, is what tells a late will apart).
 */
export function buildClientOptions(
  settings: ConnectSettings,
  protocolVersion: ProtocolVersion,
  now: number,
  readFile: ReadFile = readFileSync,
): IClientOptions {
  const { url } = parseBrokerUrl(settings.url);
  const topics = agentTopics(settings.agent);
  const willDelayS = settings.willDelayS ?? 2;
  const ca = readPem('ca', settings.ca, readFile);
  const cert = readPem('cert', settings.cert, readFile);
  const key = readPem('key', settings.key, readFile);
  const username = settings.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = settings.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const will = {
    topic: topics.status,
    payload: Buffer.from(encodePayload(buildStatus('offline', settings.session, now))),
    qos: 1 as const,
    retain: true,
    ...(protocolVersion === 5
      ? {
          properties: {
            willDelayInterval: willDelayS,
            contentType: 'application/json',
            userProperties: userProperties(settings),
          },
        }
      : {}),
  };
  return {
    protocolVersion,
    clientId: clientId(settings.agent),
    // v5: resume the session so the will delay works across a blip; v3.1.1 has no expiry, so a
    // persistent session would pile up state on the broker forever.
    clean: protocolVersion === 5 ? willDelayS === 0 : true,
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: willDelayS } } : {}),
    keepalive: settings.keepaliveS ?? 30,
    connectTimeout: settings.connectTimeoutMs ?? 10_000,
    reconnectPeriod: settings.reconnectPeriodMs ?? 1000,
    // An auth failure may be fixed on the broker side (users file updated) without restarting the agent:
    // keep retrying; the publisher reports it once (see docs/topics.md).
    reconnectOnConnackError: true,
    queueQoSZero: false,
    // mqtt-packet's number cache is 65,536 two-byte Buffers, 6 MB of heap for a few hundred packets a
    // minute (issue 17, footprint). Process-wide: it also covers the embedded Aedes, which shares it.
    writeCache: false,
    resubscribe: true,
    will,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: settings.rejectUnauthorized ?? true,
  };
}

/** MQTT 5 user properties on every publish: lets a broker-side rule route by agent/runtime without parsing JSON. */
export function userProperties(
  settings: Pick<ConnectSettings, 'agent' | 'runtime' | 'session'>,
): Record<string, string> {
  return { agent: settings.agent, runtime: settings.runtime, session: String(settings.session) };
}

/** CONNACK codes that mean "this broker does not speak MQTT 5": v3 return code 1, v5 reason 0x84. */
export function isUnsupportedProtocol(code: unknown): boolean {
  return code === 1 || code === 0x84;
}

/** CONNACK codes for refused credentials: v3 4/5, v5 0x86 (bad user name or password), 0x87 (not authorized). */
export function isAuthFailure(code: unknown): boolean {
  return code === 4 || code === 5 || code === 0x86 || code === 0x87;
}
