/**
 * The broker's abuse limits (issue 11): one table, so the option parser, --help, docs/broker.md and the
 * guard read the same names, defaults and reasons. `--limit name=value` (repeatable) sets one; 0 turns a
 * limit off where the table says so. Sizes are bytes, times milliseconds.
 */

export interface BrokerLimits {
  /** Largest CONNECT (will included) a socket may announce before it has authenticated. */
  connectBytes: number;
  /** Largest packet after CONNECT (aedes' maximumPacketSize, advertised in the MQTT 5 CONNACK). */
  packetBytes: number;
  /** Sockets accepted but not yet answered with a CONNACK; past it the oldest such socket is closed, idle ones (no CONNECT header yet) first. */
  connecting: number;
  /** Time a socket has to send its CONNECT. */
  connectTimeoutMs: number;
  /** Retained topics one owner (an agent's topic root) may hold. */
  retainedTopics: number;
  /** Retained payload bytes (topic included) one owner may hold. */
  retainedBytes: number;
  /** Bytes waiting in one client's socket buffer past which QoS 0 deliveries to it are dropped. */
  outgoingBytes: number;
  /** Time a client may stay above outgoingBytes before it is disconnected. */
  slowConsumerMs: number;
  /** Failed logins from one source address before its next attempts are delayed. */
  loginFailures: number;
  /** The longest delay a source's login attempt waits once it has failed too often. */
  loginDelayMaxMs: number;
  /** How long failures are remembered per source, and the interval of the one refusal log line per source. */
  loginWindowMs: number;
}

export interface LimitRow {
  key: keyof BrokerLimits;
  unit: 'bytes' | 'ms' | 'count';
  default: number;
  min: number;
  /** What a client sees when it crosses the limit (docs/broker.md repeats it). */
  sees: string;
}

const MiB = 1024 * 1024;

/** The CLI name (`--limit connect-bytes=65536`) of each limit, in the order docs and --help list them. */
export const LIMITS: Readonly<Record<string, LimitRow>> = {
  'connect-bytes': {
    key: 'connectBytes',
    unit: 'bytes',
    default: 64 * 1024,
    min: 256,
    sees: 'socket closed before any CONNACK',
  },
  'packet-bytes': {
    key: 'packetBytes',
    unit: 'bytes',
    default: 1 * MiB,
    min: 1024,
    sees: 'MQTT 5: DISCONNECT 0x95 Packet too large; 3.1.1: connection closed',
  },
  connecting: {
    key: 'connecting',
    unit: 'count',
    default: 512,
    min: 1,
    sees: 'the oldest socket without CONNACK is closed (idle ones before logins in progress)',
  },
  'connect-timeout-ms': {
    key: 'connectTimeoutMs',
    unit: 'ms',
    default: 10_000,
    min: 100,
    sees: 'socket closed',
  },
  'retained-topics': {
    key: 'retainedTopics',
    unit: 'count',
    default: 10_000,
    min: 1,
    sees: 'MQTT 5: PUBACK/PUBREC 0x97 Quota exceeded (QoS 0: dropped); 3.1.1: connection closed',
  },
  'retained-bytes': {
    key: 'retainedBytes',
    unit: 'bytes',
    default: 16 * MiB,
    min: 1024,
    sees: 'as retained-topics',
  },
  'outgoing-bytes': {
    key: 'outgoingBytes',
    unit: 'bytes',
    default: 8 * MiB,
    min: 64 * 1024,
    sees: 'QoS 0 messages to it dropped; a QoS 1/2 message, or slow-consumer-ms above it: MQTT 5 DISCONNECT 0x97, 3.1.1 connection closed',
  },
  'slow-consumer-ms': {
    key: 'slowConsumerMs',
    unit: 'ms',
    default: 10_000,
    min: 100,
    sees: 'see outgoing-bytes',
  },
  'login-failures': {
    key: 'loginFailures',
    unit: 'count',
    default: 5,
    min: 1,
    sees: 'later CONNACKs from that address come after a delay (doubling, up to login-delay-max-ms)',
  },
  'login-delay-max-ms': {
    key: 'loginDelayMaxMs',
    unit: 'ms',
    default: 10_000,
    min: 0,
    sees: 'see login-failures',
  },
  'login-window-ms': {
    key: 'loginWindowMs',
    unit: 'ms',
    default: 60_000,
    min: 1000,
    sees: 'failures older than this are forgotten; one log line per address per window',
  },
};

export const DEFAULT_LIMITS: Readonly<BrokerLimits> = Object.freeze(
  Object.fromEntries(Object.values(LIMITS).map((row) => [row.key, row.default])) as unknown as BrokerLimits,
);

/** `name=value` -> [key, value], or a sentence saying what is wrong (the option layer adds the flag name). */
export function parseLimit(text: string): { key: keyof BrokerLimits; value: number } | { problem: string } {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  const row = LIMITS[name];
  if (!row) return { problem: `unknown limit "${name}" (known: ${Object.keys(LIMITS).join(', ')})` };
  const raw = eq < 0 ? '' : text.slice(eq + 1).trim();
  if (!/^\d+$/.test(raw)) return { problem: `${name} needs a whole number, as in ${name}=${row.default}` };
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < row.min) {
    return { problem: `${name} must be at least ${row.min} ${row.unit}, got ${raw}` };
  }
  return { key: row.key, value };
}

export function resolveLimits(overrides: Partial<BrokerLimits> = {}): BrokerLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

/** `--limit` values -> the overrides startBroker takes; a later one wins. */
export function limitsFrom(
  values: readonly { key: keyof BrokerLimits; value: number }[],
): Partial<BrokerLimits> {
  return Object.fromEntries(values.map((v) => [v.key, v.value])) as Partial<BrokerLimits>;
}

/** The --help footer: every limit, its default and what a client sees. */
export function limitsHelp(): string {
  const rows = Object.entries(LIMITS).map(([name, row]) => `  ${name}=${row.default} (${row.unit})`);
  const head =
    'limits (`replug broker --limit NAME=N`, `replug agent --broker-limit NAME=N`; repeatable; docs/broker.md says what a client sees):';
  return [head, ...rows].join('\n');
}
