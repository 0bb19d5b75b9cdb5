/**
 * `replug agent` configuration: flags > environment (REPLUG_*, and the seed's TEST_VID/TEST_PID) >
 * defaults. Pure: the world (hostname, home dir, TTY) is passed in; every problem is collected and thrown
 * as one ConfigError so the user fixes them all in one go.
 */

import { parseFlags } from '../cli/args.js';
import { ConfigError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { hex4, parseDecimalId, parseTargetSpec, type TargetSpec } from '../usb/ids.js';
import type { SourceName } from '../usb/types.js';
import { AGENT_ID_PATTERN, type Env, Problems, parseIntFlag, readEnv, sanitizeAgentId } from './collect.js';
import { parseMqttUrl } from './mqtt-url.js';

export const ALL_SOURCES: readonly SourceName[] = ['devfs', 'sysfs', 'nusb', 'uevent'];

export interface AgentConfig {
  id: string;
  runtimeLabel: string | undefined;
  targets: TargetSpec[];
  /** True when targets came from neither flags nor env: the command may prompt like the seed did. */
  targetsMissing: boolean;
  driver: string | undefined;
  detachKernelDriver: boolean;
  sysfsRoot: string;
  devfsRoot: string;
  procRoot: string;
  sources: SourceName[];
  rescanIntervalMs: number;
  settleMs: number;
  backoff: { initialMs: number; maxMs: number; factor: number };
  probeIntervalMs: number;
  mqtt: {
    url: string | undefined;
    username: string | undefined;
    password: string | undefined;
    cafile: string | undefined;
    cert: string | undefined;
    key: string | undefined;
  };
  broker: { host: string; port: number; allowAnonymous: boolean; users: string | undefined };
  stateDir: string | undefined;
  homeassistant: boolean;
  relay: boolean;
  healthIntervalMs: number;
  queueCapacity: number;
  logLevel: LogLevel;
  logFormat: 'auto' | 'pretty' | 'json';
  debug: boolean;
  help: boolean;
}

export const agentFlags = {
  id: { type: 'string' },
  'runtime-label': { type: 'string' },
  target: { type: 'string', multiple: true, short: 't' },
  driver: { type: 'string' },
  'detach-kernel-driver': { type: 'boolean' },
  'sysfs-root': { type: 'string' },
  'devfs-root': { type: 'string' },
  'proc-root': { type: 'string' },
  sources: { type: 'string' },
  'rescan-interval': { type: 'string' },
  settle: { type: 'string' },
  'backoff-initial': { type: 'string' },
  'backoff-max': { type: 'string' },
  'probe-interval': { type: 'string' },
  mqtt: { type: 'string' },
  username: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'P' },
  cafile: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'broker-host': { type: 'string' },
  'broker-port': { type: 'string' },
  'broker-users': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  'state-dir': { type: 'string' },
  homeassistant: { type: 'boolean' },
  relay: { type: 'boolean' },
  'health-interval': { type: 'string' },
  'queue-capacity': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface AgentWorld {
  hostname: string;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseTargets(problems: Problems, flags: string[] | undefined, env: Env): TargetSpec[] | undefined {
  const fromFlags = flags ?? [];
  const envList = env.REPLUG_TARGETS ? splitList(env.REPLUG_TARGETS) : [];
  const specs =
    fromFlags.length > 0
      ? fromFlags.map((t) => ['--target', t] as const)
      : envList.map((t) => ['REPLUG_TARGETS', t] as const);
  const targets: TargetSpec[] = [];
  for (const [where, text] of specs) {
    const parsed = parseTargetSpec(text);
    if (typeof parsed === 'string') problems.add(`${where}: ${parsed}`);
    else targets.push(parsed);
  }
  if (specs.length > 0) return targets;

  // The seed's contract: TEST_VID / TEST_PID, decimal 0..65535, as the original .NET tool took them.
  const vidText = env.TEST_VID;
  const pidText = env.TEST_PID;
  if (vidText === undefined && pidText === undefined) return undefined;
  const vid = vidText === undefined ? undefined : parseDecimalId(vidText);
  const pid = pidText === undefined ? undefined : parseDecimalId(pidText);
  if (vidText === undefined) problems.add('TEST_PID is set but TEST_VID is not; set both (decimal 0-65535)');
  else if (vid === undefined)
    problems.add(`TEST_VID must be a decimal number from 0 to 65535, got "${vidText}"`);
  if (pidText === undefined) problems.add('TEST_VID is set but TEST_PID is not; set both (decimal 0-65535)');
  else if (pid === undefined)
    problems.add(`TEST_PID must be a decimal number from 0 to 65535, got "${pidText}"`);
  if (vid === undefined || pid === undefined) return [];
  return [{ vid: hex4(vid), pid: hex4(pid) }];
}

function parseSources(problems: Problems, text: string | undefined, where: string): SourceName[] {
  if (!text || text === 'auto' || text === 'all') return [...ALL_SOURCES];
  const names = splitList(text);
  const bad = names.filter((n) => !(ALL_SOURCES as readonly string[]).includes(n));
  if (bad.length > 0)
    problems.add(
      `${where}: unknown source ${bad.map((b) => `"${b}"`).join(', ')}; choose from ${ALL_SOURCES.join(', ')}`,
    );
  return names.filter((n): n is SourceName => (ALL_SOURCES as readonly string[]).includes(n));
}

export function loadAgentConfig(argv: string[], env: Env, world: AgentWorld): AgentConfig {
  const problems = new Problems();
  const { values: f } = parseFlags(argv, agentFlags);
  const pick = (flag: string | undefined, envName: string): [string | undefined, string] =>
    flag !== undefined ? [flag, `--${envName}`] : [env[envName], envName];

  const idRaw = f.id ?? env.REPLUG_ID;
  const id = idRaw ?? sanitizeAgentId(world.hostname);
  if (idRaw !== undefined && !AGENT_ID_PATTERN.test(idRaw)) {
    problems.add(
      `${f.id !== undefined ? '--id' : 'REPLUG_ID'} "${idRaw}" is not a valid agent id; use lowercase letters, digits and dashes ([a-z0-9-]+)`,
    );
  }
  const targets = parseTargets(problems, f.target, env);

  const int = (
    flag: string | undefined,
    flagName: string,
    envName: string,
    def: number,
    min: number,
    max: number,
  ) => {
    const where = flag !== undefined ? `--${flagName}` : envName;
    return parseIntFlag(problems, where, flag ?? env[envName], { min, max }) ?? def;
  };

  const [mqttUrl, mqttWhere] = pick(f.mqtt, 'REPLUG_MQTT_URL');
  if (mqttUrl !== undefined) {
    const parsed = parseMqttUrl(mqttUrl);
    if (typeof parsed === 'string')
      problems.add(`${mqttWhere === '--REPLUG_MQTT_URL' ? '--mqtt' : mqttWhere}: ${parsed}`);
  }

  const logLevelRaw = f['log-level'] ?? env.REPLUG_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevelRaw)) {
    problems.add(
      `${f['log-level'] !== undefined ? '--log-level' : 'REPLUG_LOG_LEVEL'} must be one of ${LOG_LEVELS.join(', ')}, got "${logLevelRaw}"`,
    );
  }
  const logFormatRaw = f['log-format'] ?? env.REPLUG_LOG_FORMAT ?? 'auto';
  if (!['auto', 'pretty', 'json'].includes(logFormatRaw)) {
    problems.add(`--log-format must be auto, pretty or json, got "${logFormatRaw}"`);
  }

  const allowAnonymous =
    f['allow-anonymous'] ??
    readEnv(problems, (e) => e.get('REPLUG_BROKER_ALLOW_ANONYMOUS').default('false').asBool(), env) ??
    false;
  const homeassistant =
    f.homeassistant ??
    readEnv(problems, (e) => e.get('REPLUG_HOMEASSISTANT').default('false').asBool(), env) ??
    false;
  const relay =
    f.relay ?? readEnv(problems, (e) => e.get('REPLUG_RELAY').default('false').asBool(), env) ?? false;

  const backoffInitial = int(
    f['backoff-initial'],
    'backoff-initial',
    'REPLUG_BACKOFF_INITIAL_MS',
    250,
    1,
    600_000,
  );
  const backoffMax = int(f['backoff-max'], 'backoff-max', 'REPLUG_BACKOFF_MAX_MS', 5000, 1, 3_600_000);
  if (backoffMax < backoffInitial)
    problems.add(
      `--backoff-max (${backoffMax} ms) must not be below --backoff-initial (${backoffInitial} ms)`,
    );

  const config: AgentConfig = {
    id,
    runtimeLabel: f['runtime-label'] ?? env.REPLUG_RUNTIME_LABEL,
    targets: targets ?? [],
    targetsMissing: targets === undefined,
    driver: f.driver ?? env.REPLUG_DRIVER,
    detachKernelDriver: f['detach-kernel-driver'] ?? false,
    sysfsRoot: f['sysfs-root'] ?? env.REPLUG_SYSFS_ROOT ?? '/sys',
    devfsRoot: f['devfs-root'] ?? env.REPLUG_DEVFS_ROOT ?? '/dev',
    procRoot: f['proc-root'] ?? env.REPLUG_PROC_ROOT ?? '/proc',
    sources: parseSources(
      problems,
      f.sources ?? env.REPLUG_SOURCES,
      f.sources !== undefined ? '--sources' : 'REPLUG_SOURCES',
    ),
    rescanIntervalMs: int(
      f['rescan-interval'],
      'rescan-interval',
      'REPLUG_RESCAN_INTERVAL_MS',
      1000,
      50,
      3_600_000,
    ),
    settleMs: int(f.settle, 'settle', 'REPLUG_SETTLE_MS', 3000, 0, 600_000),
    backoff: { initialMs: backoffInitial, maxMs: backoffMax, factor: 2 },
    probeIntervalMs: int(
      f['probe-interval'],
      'probe-interval',
      'REPLUG_PROBE_INTERVAL_MS',
      2000,
      0,
      3_600_000,
    ),
    mqtt: {
      url: mqttUrl,
      username: f.username ?? env.REPLUG_MQTT_USERNAME,
      password: f.password ?? env.REPLUG_MQTT_PASSWORD,
      cafile: f.cafile ?? env.REPLUG_MQTT_CAFILE,
      cert: f.cert ?? env.REPLUG_MQTT_CERT,
      key: f.key ?? env.REPLUG_MQTT_KEY,
    },
    broker: {
      host: f['broker-host'] ?? env.REPLUG_BROKER_HOST ?? '127.0.0.1',
      port: int(f['broker-port'], 'broker-port', 'REPLUG_BROKER_PORT', 1883, 0, 65535),
      allowAnonymous,
      users: f['broker-users'] ?? env.REPLUG_BROKER_USERS,
    },
    stateDir: f['state-dir'] ?? env.REPLUG_STATE_DIR,
    homeassistant,
    relay,
    healthIntervalMs: int(
      f['health-interval'],
      'health-interval',
      'REPLUG_HEALTH_INTERVAL_MS',
      30_000,
      1000,
      86_400_000,
    ),
    queueCapacity: int(f['queue-capacity'], 'queue-capacity', 'REPLUG_QUEUE_CAPACITY', 10_000, 1, 10_000_000),
    logLevel: logLevelRaw as LogLevel,
    logFormat: logFormatRaw as AgentConfig['logFormat'],
    debug: f.debug ?? false,
    help: f.help ?? false,
  };
  if (config.mqtt.url !== undefined && (f['broker-port'] !== undefined || f['broker-host'] !== undefined)) {
    problems.add(
      '--broker-port/--broker-host configure the embedded broker, which --mqtt replaces; give one or the other',
    );
  }
  if (config.mqtt.cert !== undefined && config.mqtt.key === undefined)
    problems.add("--cert needs --key (the client certificate's private key)");
  if (config.mqtt.key !== undefined && config.mqtt.cert === undefined) problems.add('--key needs --cert');
  if (!problems.empty) throw new ConfigError(problems.list);
  return config;
}
