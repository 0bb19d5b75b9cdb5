/**
 * One MQTT.js subscriber per broker for `replug watch`. Each link lives on its own: an unreachable or
 * dropped broker is retried every second while the others keep delivering, and its state changes are
 * reported once per outage (docs/topics.md "Broker problems"), not per retry.
 *
 * It lives in src/mqtt because only src/mqtt and src/broker import the mqtt package (DESIGN.md).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ConfigError, errnoOf } from '../errors.js';
import { type Clock, sleep } from '../util/clock.js';
import { isUnsupportedProtocol } from './connect.js';
import { parseBrokerUrl } from './url.js';

/** One MQTT message as the subscriber hands it over; receivedAt comes from the injected clock. */
export interface SubscribedMessage {
  /** The broker URL without credentials (parseBrokerUrl().redacted). */
  broker: string;
  topic: string;
  payload: Uint8Array;
  retained: boolean;
  receivedAt: number;
  /** MQTT 5 user properties of the PUBLISH (the agent sends agent, session, ...); absent on 3.1.1. */
  userProperties?: Record<string, string | string[]>;
}

export interface SubscriberSettings {
  urls: readonly string[];
  username?: string;
  password?: string;
  /** PEM file paths, read at start so a typo fails with one line. */
  cafile?: string;
  cert?: string;
  key?: string;
  /** Skip server certificate verification (like mosquitto_sub --insecure): lab brokers only. */
  insecure?: boolean;
  filters: readonly string[];
  connectTimeoutMs?: number;
  reconnectPeriodMs?: number;
}

/** `refused`: connected, but the broker refused the subscription (a negative SUBACK, e.g. an ACL). */
export type LinkState = 'connecting' | 'connected' | 'unreachable' | 'lost' | 'refused';

export interface BrokerLink {
  /** Without credentials: the broker's name in the store, the view and NDJSON. */
  readonly url: string;
  state: LinkState;
  detail: string;
  /** When the last SUBACK arrived (monotonic ms), undefined before. */
  subscribedAt: number | undefined;
  /** The MQTT version of the connection: 5, or 4 (3.1.1) once the broker refused 5. */
  protocolVersion: 4 | 5;
  lastMessageAt: number;
}

export interface SubscriberHooks {
  clock: Clock;
  onMessage(message: SubscribedMessage): void;
  /** A link changed state in a way worth one line: unreachable, lost, refused, or back after either. */
  onLink(link: BrokerLink, change: 'unreachable' | 'lost' | 'back' | 'refused'): void;
  readFile?: (path: string) => Buffer;
}

export interface FleetSubscriber {
  readonly links: readonly BrokerLink[];
  /**
   * Resolves once every link either had its SUBACK followed by `quietMs` without a message (the retained
   * census is in, as with `mosquitto_sub --retained-only`) or is unreachable, or when `maxMs` passed.
   */
  settled(quietMs: number, maxMs: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Validates every URL and reads TLS files first, reporting every problem at once. */
export function clientOptions(
  s: SubscriberSettings,
  readFile: (path: string) => Buffer = readFileSync,
): { url: string; redacted: string }[] & { options: IClientOptions } {
  const problems: string[] = [];
  const parsed: { url: string; redacted: string }[] = [];
  for (const text of s.urls) {
    try {
      const u = parseBrokerUrl(text);
      parsed.push({ url: u.href, redacted: u.redacted });
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  const pem = (flag: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFile(file);
    } catch (err) {
      problems.push(`cannot read ${flag} ${file} (${errnoOf(err) ?? String(err)})`);
      return undefined;
    }
  };
  const ca = pem('--cafile', s.cafile);
  const cert = pem('--cert', s.cert);
  const key = pem('--key', s.key);
  if ((cert === undefined) !== (key === undefined) && problems.length === 0) {
    problems.push('--cert and --key go together');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const options: IClientOptions = {
    // MQTT 5 where the broker offers it (user properties reach --json), 3.1.1 otherwise (subscribe()).
    protocolVersion: 5,
    clean: true,
    keepalive: 30,
    connectTimeout: s.connectTimeoutMs ?? 5000,
    reconnectPeriod: s.reconnectPeriodMs ?? 1000,
    resubscribe: true,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: !s.insecure,
  };
  return Object.assign(parsed, { options });
}

/** SUBACK failure codes (3.1.1 §3.9.3: 0x80; MQTT 5 §3.9.3 reason codes). */
const SUBACK_REASONS: Record<number, string> = {
  128: 'unspecified error',
  131: 'implementation specific error',
  135: 'not authorized',
  143: 'topic filter invalid',
  145: 'packet identifier in use',
  151: 'quota exceeded',
  158: 'shared subscriptions not supported',
  161: 'subscription identifiers not supported',
  162: 'wildcard subscriptions not supported',
};

/** Which filters a negative SUBACK refused, as one line; undefined when there was no SUBACK. */
export function refusedFilters(
  filters: readonly string[],
  packet: { granted?: unknown } | undefined,
): { detail: string; granted: number } | undefined {
  const codes = Array.isArray(packet?.granted) ? (packet.granted as unknown[]) : undefined;
  if (!codes) return undefined;
  const refused = filters
    .map((f, i) => ({ filter: f, code: typeof codes[i] === 'number' ? (codes[i] as number) : 0x80 }))
    .filter((x) => (x.code & 0x80) !== 0);
  if (refused.length === 0) return undefined;
  const parts = refused.map((r) => {
    const why = SUBACK_REASONS[r.code] ?? 'refused';
    return `${r.filter} (0x${r.code.toString(16)} ${why})`;
  });
  return {
    detail: `subscription refused: ${parts.join(', ')}; check this user's rights on the broker`,
    granted: filters.length - refused.length,
  };
}

export function subscribe(s: SubscriberSettings, hooks: SubscriberHooks): FleetSubscriber {
  const targets = clientOptions(s, hooks.readFile);
  const clients: MqttClient[] = [];
  const links: BrokerLink[] = [];
  let closing = false;
  for (const { url, redacted } of targets) {
    const { client, link } = openLink(url, redacted, s, hooks, targets.options, () => closing);
    clients.push(client);
    links.push(link);
  }
  return {
    links,
    async settled(quietMs, maxMs, signal) {
      const start = hooks.clock.monotonic();
      const done = (l: BrokerLink) =>
        l.state === 'unreachable' ||
        (l.state === 'refused' && l.subscribedAt === undefined) ||
        (l.subscribedAt !== undefined &&
          hooks.clock.monotonic() - Math.max(l.subscribedAt, l.lastMessageAt) >= quietMs);
      while (!links.every(done) && hooks.clock.monotonic() - start < maxMs && !signal?.aborted) {
        await sleep(hooks.clock, Math.min(25, quietMs)).catch(() => undefined);
      }
    },
    async close() {
      closing = true;
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    },
  };
}

/** One broker: its client, and the link state it reports (once per change, not per retry). */
function openLink(
  url: string,
  redacted: string,
  s: SubscriberSettings,
  hooks: SubscriberHooks,
  options: IClientOptions,
  closing: () => boolean,
): { client: MqttClient; link: BrokerLink } {
  const link: BrokerLink = {
    url: redacted,
    state: 'connecting',
    detail: 'connecting',
    subscribedAt: undefined,
    lastMessageAt: 0,
    protocolVersion: 5,
  };
  const clientId = `replug-watch-${randomBytes(4).toString('hex')}`;
  // writeCache: false spares watch mqtt-packet's 6 MB number cache; it writes SUBSCRIBE and PINGREQ only.
  const client = mqtt.connect(url, { ...options, clientId, writeCache: false });
  let lastError = '';
  client.on('connect', () => {
    const wasDown = link.state === 'unreachable' || link.state === 'lost';
    link.state = 'connected';
    link.detail = 'connected';
    // QoS 0: the watcher only observes; a PUBACK per message would halve throughput for nothing.
    client.subscribe([...s.filters], { qos: 0 }, (err, _subs, packet) => {
      if (!err) {
        link.subscribedAt = hooks.clock.monotonic();
        return;
      }
      const refusal = refusedFilters(s.filters, packet);
      // No SUBACK (the connection closed first): the close handler says so.
      if (!refusal) return;
      if (refusal.granted > 0) link.subscribedAt = hooks.clock.monotonic();
      link.state = 'refused';
      link.detail = refusal.detail;
      hooks.onLink(link, 'refused');
    });
    if (wasDown) hooks.onLink(link, 'back');
  });
  client.on('message', (topic, payload, packet) => {
    link.lastMessageAt = hooks.clock.monotonic();
    const userProperties = packet.properties?.userProperties;
    hooks.onMessage({
      broker: redacted,
      topic,
      payload,
      retained: packet.retain,
      receivedAt: hooks.clock.now(),
      ...(userProperties && Object.keys(userProperties).length > 0 ? { userProperties } : {}),
    });
  });
  client.on('error', (err: Error & { code?: unknown }) => {
    if (link.protocolVersion === 5 && isUnsupportedProtocol(err.code)) {
      // A 3.1.1-only broker (Aedes 1.x, old Mosquitto). MQTT.js suppresses reconnects after a refused
      // CONNACK; reconnect() uses the options it holds, now 3.1.1. Deferred: MQTT.js is still handling it.
      link.protocolVersion = 4;
      client.options.protocolVersion = 4;
      hooks.clock.setTimeout(() => {
        if (!closing()) client.reconnect();
      }, 0);
      return;
    }
    lastError = errnoOf(err) ?? err.message;
  });
  client.on('close', () => {
    if (closing()) return;
    if (link.state === 'connecting' || link.state === 'connected') {
      const change = link.state === 'connecting' ? 'unreachable' : 'lost';
      link.state = change;
      link.detail = `${change}${lastError ? `: ${lastError}` : ''}`;
      link.subscribedAt = undefined;
      hooks.onLink(link, change);
    }
  });
  return { client, link };
}
