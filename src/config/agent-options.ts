/**
 * `replug agent`'s option table: every flag, its short form, variable, kind, default and help line, once.
 * config/agent.ts turns the parsed values into an AgentConfig; cli/help.ts renders --help from these rows.
 */

import { LIMITS } from '../broker/guard/limits.js';
import { kinds, OptionProblem } from '../cli/kinds.js';
import { commonRows, defineOptions, logLevelRow, splitList } from '../cli/options.js';
import { parseListen } from '../metrics/listen.js';
import { DEFAULT_BACKOFF } from '../session/backoff.js';
import { DEFAULT_PROBE_INTERVAL_MS } from '../session/drivers/types.js';
import { parseTargetSpec } from '../usb/ids.js';
import type { SourceName } from '../usb/types.js';
import { LIMITS_ENV, limitKind } from './broker-limit.js';
import { healRows } from './heal-options.js';

export const ALL_SOURCES: readonly SourceName[] = ['devfs', 'sysfs', 'nusb', 'uevent'];

/** Agent ids become topic levels: `[a-z0-9-]+` (src/mqtt/topics.ts). */
export const AGENT_ID_PATTERN = /^[a-z0-9-]+$/;

/**
 * How long `replug agent` may take to stop on SIGINT/SIGTERM, whatever is in flight: a feature or source
 * that has not stopped by then is abandoned with one log line (issue 12). Under Docker's 10 s stop grace
 * period, so the offline status is published before a SIGKILL.
 */
export const STOP_BOUND_MS = 8000;

const agentId = {
  metavar: 'ID',
  parse(text: string) {
    if (!AGENT_ID_PATTERN.test(text))
      throw new OptionProblem(
        `"${text}" is not a valid agent id; use lowercase letters, digits and dashes ([a-z0-9-]+)`,
      );
    return text;
  },
};

function parseSources(text: string): SourceName[] | string {
  if (text === 'auto' || text === 'all') return [...ALL_SOURCES];
  const names = splitList(text);
  const bad = names.filter((n) => !(ALL_SOURCES as readonly string[]).includes(n));
  if (bad.length > 0)
    return `unknown source ${bad.map((b) => `"${b}"`).join(', ')}; choose from ${ALL_SOURCES.join(', ')}`;
  return names as SourceName[];
}

const T = 'Targets';
const D = 'Detection';
const M = 'MQTT';
const B = 'Embedded broker (when no --mqtt)';
const O = 'Output';

export const agentOptions = defineOptions({
  target: {
    group: T,
    kind: kinds.parsed('VID:PID[:SERIAL]', parseTargetSpec),
    short: 't',
    multiple: true,
    env: 'REPLUG_TARGETS',
    help: 'device to keep a session with (hex as lsusb prints)',
    more: ["legacy env TEST_VID / TEST_PID (decimal 0-65535, the seed's); asked for on a TTY"],
  },
  driver: {
    group: T,
    kind: kinds.file(),
    env: 'REPLUG_DRIVER',
    help: 'session driver module (default driver: open, claim interface 0, GET_DESCRIPTOR)',
  },
  'driver-option': {
    group: T,
    kind: kinds.keyValue(),
    multiple: true,
    env: 'REPLUG_DRIVER_OPTIONS',
    help: "passed to the --driver module's factory as options.KEY (a string)",
  },
  'detach-kernel-driver': {
    group: T,
    kind: kinds.flag(),
    env: 'REPLUG_DETACH_KERNEL_DRIVER',
    help: 'let the default driver detach a kernel driver from interface 0',
  },
  'backoff-initial': {
    group: T,
    kind: kinds.int(1, 600_000, 'MS'),
    default: DEFAULT_BACKOFF.initialMs,
    env: 'REPLUG_BACKOFF_INITIAL_MS',
    help: 'first retry delay; doubles up to --backoff-max',
  },
  'backoff-max': {
    group: T,
    kind: kinds.int(1, 3_600_000, 'MS'),
    default: DEFAULT_BACKOFF.maxMs,
    env: 'REPLUG_BACKOFF_MAX_MS',
    help: 'longest retry delay',
  },
  'probe-interval': {
    group: T,
    kind: kinds.int(0, 3_600_000, 'MS'),
    default: DEFAULT_PROBE_INTERVAL_MS,
    env: 'REPLUG_PROBE_INTERVAL_MS',
    help: 'liveness probe while up; 0 = off. --driver modules get it as options.probeIntervalMs',
  },
  sources: {
    group: D,
    kind: kinds.parsed('LIST', parseSources),
    default: [...ALL_SOURCES] as SourceName[],
    defaultText: 'all that work here',
    env: 'REPLUG_SOURCES',
    help: `detection sources, comma-separated: ${ALL_SOURCES.join(',')}`,
  },
  'sysfs-root': {
    group: D,
    kind: kinds.path(),
    default: '/sys',
    env: 'REPLUG_SYSFS_ROOT',
    help: 'sysfs root',
  },
  'devfs-root': {
    group: D,
    kind: kinds.path(),
    default: '/dev',
    env: 'REPLUG_DEVFS_ROOT',
    help: 'devfs root',
  },
  'proc-root': {
    group: D,
    kind: kinds.path(),
    default: '/proc',
    env: 'REPLUG_PROC_ROOT',
    help: 'procfs root (runtime facts, user namespace)',
  },
  'rescan-interval': {
    group: D,
    kind: kinds.int(50, 3_600_000, 'MS'),
    default: 1000,
    env: 'REPLUG_RESCAN_INTERVAL_MS',
    help: 'sysfs rescan period',
  },
  settle: {
    group: D,
    kind: kinds.int(0, 600_000, 'MS'),
    default: 3000,
    env: 'REPLUG_SETTLE_MS',
    help: 'window for per-source detection reports',
  },
  relay: {
    group: D,
    kind: kinds.flag(),
    env: 'REPLUG_RELAY',
    help: 'also run `replug relay` so libusb apps in this container see replugs',
  },
  id: {
    group: M,
    kind: agentId,
    env: 'REPLUG_ID',
    defaultText: 'the hostname, as [a-z0-9-]+',
    help: 'agent id, the topic level replug/<id>/',
  },
  'runtime-label': {
    group: M,
    kind: kinds.string('LABEL'),
    env: 'REPLUG_RUNTIME_LABEL',
    help: 'shown by `replug watch --compare` (e.g. native, container)',
  },
  mqtt: {
    group: M,
    kind: kinds.brokerUrl(),
    env: 'REPLUG_MQTT_URL',
    defaultText: 'the embedded broker',
    help: 'publish to this broker (mqtt://, mqtts://, ws://, wss://) instead of the embedded one',
  },
  username: {
    group: M,
    kind: kinds.string('NAME'),
    short: 'u',
    env: 'REPLUG_MQTT_USERNAME',
    help: 'user name',
  },
  password: {
    group: M,
    kind: kinds.string('SECRET'),
    short: 'P',
    env: 'REPLUG_MQTT_PASSWORD',
    help: 'password (prefer the variable: argv is visible in ps)',
  },
  cafile: {
    group: M,
    kind: kinds.file(),
    env: 'REPLUG_MQTT_CAFILE',
    help: 'CA certificate (PEM) for mqtts://',
  },
  cert: {
    group: M,
    kind: kinds.file(),
    env: 'REPLUG_MQTT_CERT',
    help: 'client certificate (PEM)',
    needs: [{ option: 'key', why: "the client certificate's private key" }],
  },
  key: {
    group: M,
    kind: kinds.file(),
    env: 'REPLUG_MQTT_KEY',
    help: 'its private key (PEM)',
    needs: [{ option: 'cert' }],
  },
  homeassistant: {
    group: M,
    kind: kinds.flag(),
    env: 'REPLUG_HOMEASSISTANT',
    help: 'publish Home Assistant MQTT discovery',
  },
  'state-dir': {
    group: M,
    kind: kinds.path(),
    env: 'REPLUG_STATE_DIR',
    defaultText: '/var/lib/replug, else ~/.local/state/replug',
    help: 'boot counter, durable event queue, what was announced',
  },
  'queue-capacity': {
    group: M,
    kind: kinds.int(1, 10_000_000),
    default: 10_000,
    env: 'REPLUG_QUEUE_CAPACITY',
    help: 'events kept while the broker is away (oldest dropped first)',
  },
  'health-interval': {
    group: M,
    kind: kinds.int(1000, 86_400_000, 'MS'),
    default: 30_000,
    env: 'REPLUG_HEALTH_INTERVAL_MS',
    help: 'health topic period',
  },
  // --- fleet control (issue 18) ---
  commands: {
    group: M,
    kind: kinds.flag(),
    env: 'REPLUG_COMMANDS',
    defaultText: 'off; on with --broker-users on the embedded broker',
    help: 'answer requests on replug/<id>/request/<action> and replug/_fleet/request/<action> (docs/topics.md)',
    more: ['who may ask is up to the broker: only its `operator` users may publish requests'],
  },
  'commands-max-age': {
    group: M,
    kind: kinds.int(1, 86_400, 'S'),
    default: 60,
    env: 'REPLUG_COMMANDS_MAX_AGE_S',
    help: "refuse a request whose ts is further than S seconds from this agent's clock",
  },
  // --- end fleet control ---
  'broker-host': {
    group: B,
    kind: kinds.string('HOST'),
    default: '127.0.0.1',
    env: 'REPLUG_BROKER_HOST',
    help: 'listen address',
  },
  'broker-port': {
    group: B,
    kind: kinds.int(0, 65535, 'PORT'),
    default: 1883,
    env: 'REPLUG_BROKER_PORT',
    help: 'listen port (0 = any free port)',
  },
  'broker-users': {
    group: B,
    kind: kinds.file(),
    env: 'REPLUG_BROKER_USERS',
    help: 'users file (`replug broker passwd`); required beyond loopback',
  },
  'allow-anonymous': {
    group: B,
    kind: kinds.flag(),
    env: 'REPLUG_BROKER_ALLOW_ANONYMOUS',
    help: 'allow anonymous clients beyond loopback (not recommended)',
  },
  'broker-limit': {
    group: B,
    kind: limitKind,
    multiple: true,
    env: LIMITS_ENV,
    defaultText: 'as `replug broker --help` lists',
    help: "set one of the broker's abuse limits, as `replug broker --limit` does; repeatable",
    more: [`names: ${Object.keys(LIMITS).join(', ')} (docs/broker.md)`],
  },
  // Healing and actions (issue 15): one block, rows in heal-options.ts.
  ...healRows,
  // issue 19: Prometheus metrics (src/metrics; prom-client is loaded only when this is given).
  metrics: {
    group: O,
    kind: kinds.checked('[HOST:]PORT', (t) => {
      const at = parseListen(t);
      return typeof at === 'string' ? at : undefined;
    }),
    env: 'REPLUG_METRICS',
    help: 'serve Prometheus metrics on http://HOST:PORT/metrics (loopback unless HOST is given; docs/metrics.md)',
  },
  'log-level': { ...logLevelRow, group: O },
  'log-format': {
    group: O,
    kind: kinds.choice(['auto', 'pretty', 'json'] as const, 'FORMAT'),
    default: 'auto',
    env: 'REPLUG_LOG_FORMAT',
    help: 'auto (readable on a TTY, JSON lines otherwise), pretty, json',
  },
  debug: { ...commonRows.debug, group: O },
  help: { ...commonRows.help, group: O },
});
