/**
 * `replug agent` configuration: flags > environment (REPLUG_*, and the seed's TEST_VID/TEST_PID) >
 * defaults, all from the option table (agent-options.ts). Pure apart from the injected world (hostname,
 * cwd, a file prober); every problem is collected and thrown as one ConfigError so the user fixes them all
 * in one go.
 */

import { type BrokerLimits, limitsFrom } from '../broker/guard/limits.js';
import type { FileState } from '../cli/kinds.js';
import { ConfigError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { type Listen, parseListen } from '../metrics/listen.js';
import { hex4, parseDecimalId, type TargetSpec } from '../usb/ids.js';
import type { SourceName } from '../usb/types.js';
import { agentOptions } from './agent-options.js';
import { type ActionsConfig, actionsConfig, type HealConfig, healConfig } from './heal.js';

export { AGENT_ID_PATTERN, ALL_SOURCES, agentOptions, STOP_BOUND_MS } from './agent-options.js';

export interface AgentConfig {
  id: string;
  runtimeLabel: string | undefined;
  targets: TargetSpec[];
  /** True when targets came from neither flags nor env: the command may prompt like the seed did. */
  targetsMissing: boolean;
  driver: string | undefined;
  /**
   * What a --driver factory gets as `options`: every `--driver-option K=V` (strings), and
   * `probeIntervalMs` when --probe-interval (or its variable) was given.
   */
  driverOptions: Record<string, string | number>;
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
  broker: {
    host: string;
    port: number;
    allowAnonymous: boolean;
    users: string | undefined;
    /** --broker-limit overrides; each absent limit takes its default (src/broker/guard/limits.ts). */
    limits: Partial<BrokerLimits>;
  };
  stateDir: string | undefined;
  homeassistant: boolean;
  /** Fleet control (issue 18): given = --commands; enabled also follows from a users file on the embedded broker. */
  commands: { given: boolean; maxAgeMs: number };
  relay: boolean;
  healthIntervalMs: number;
  queueCapacity: number;
  /** The recovery ladder (--heal ...) and the actions (--on-up ..., --restart-container); issue 15. */
  heal: HealConfig;
  actions: ActionsConfig;
  /** --metrics: where to serve /metrics; absent = no metrics (prom-client never loaded). */
  metrics: Listen | undefined;
  logLevel: LogLevel;
  logFormat: 'auto' | 'pretty' | 'json';
  debug: boolean;
  help: boolean;
}

export interface AgentWorld {
  hostname: string;
  /** Relative paths resolve against this; process.cwd() when absent. */
  cwd?: string;
  fileState?: (file: string) => FileState;
}

/** Agent ids become topic levels: `[a-z0-9-]+`. Hostnames are folded into that shape. */
export function sanitizeAgentId(host: string): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return id || 'replug';
}

/** The seed's contract: TEST_VID / TEST_PID, decimal 0..65535, as the original .NET tool took them. */
function seedTarget(env: Record<string, string | undefined>, problems: string[]): TargetSpec[] | undefined {
  const vidText = env.TEST_VID;
  const pidText = env.TEST_PID;
  if (vidText === undefined && pidText === undefined) return undefined;
  const vid = vidText === undefined ? undefined : parseDecimalId(vidText);
  const pid = pidText === undefined ? undefined : parseDecimalId(pidText);
  if (vidText === undefined) problems.push('TEST_PID is set but TEST_VID is not; set both (decimal 0-65535)');
  else if (vid === undefined)
    problems.push(`TEST_VID must be a decimal number from 0 to 65535, got "${vidText}"`);
  if (pidText === undefined) problems.push('TEST_VID is set but TEST_PID is not; set both (decimal 0-65535)');
  else if (pid === undefined)
    problems.push(`TEST_PID must be a decimal number from 0 to 65535, got "${pidText}"`);
  if (vid === undefined || pid === undefined) return [];
  return [{ vid: hex4(vid), pid: hex4(pid) }];
}

export function loadAgentConfig(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  world: AgentWorld,
): AgentConfig {
  const { parsed, problems } = agentOptions.read(argv, {
    env,
    cwd: world.cwd ?? process.cwd(),
    ...(world.fileState ? { fileState: world.fileState } : {}),
  });
  const v = parsed.values;
  const targetsGiven = parsed.from.target !== 'default';
  const targets = targetsGiven ? v.target : seedTarget(env, problems);
  if (
    v.mqtt !== undefined &&
    (parsed.from['broker-port'] === 'flag' || parsed.from['broker-host'] === 'flag')
  )
    problems.push(
      '--broker-port/--broker-host configure the embedded broker, which --mqtt replaces; give one or the other',
    );
  // Only the flag is refused: the variable is shared with `replug broker`, as REPLUG_BROKER_PORT is.
  if (v.mqtt !== undefined && parsed.from['broker-limit'] === 'flag')
    problems.push(
      '--broker-limit sets limits of the embedded broker, which --mqtt replaces; set them on that broker (`replug broker --limit`)',
    );
  if (v['backoff-max'] < v['backoff-initial'])
    problems.push(
      `--backoff-max (${v['backoff-max']} ms) must not be below --backoff-initial (${v['backoff-initial']} ms)`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    id: v.id ?? sanitizeAgentId(world.hostname),
    runtimeLabel: v['runtime-label'],
    targets: targets ?? [],
    targetsMissing: targets === undefined,
    driver: v.driver,
    driverOptions: {
      ...Object.fromEntries(v['driver-option']),
      ...(parsed.from['probe-interval'] !== 'default' ? { probeIntervalMs: v['probe-interval'] } : {}),
    },
    detachKernelDriver: v['detach-kernel-driver'],
    sysfsRoot: v['sysfs-root'],
    devfsRoot: v['devfs-root'],
    procRoot: v['proc-root'],
    sources: v.sources,
    rescanIntervalMs: v['rescan-interval'],
    settleMs: v.settle,
    backoff: { initialMs: v['backoff-initial'], maxMs: v['backoff-max'], factor: 2 },
    probeIntervalMs: v['probe-interval'],
    mqtt: {
      url: v.mqtt,
      username: v.username,
      password: v.password,
      cafile: v.cafile,
      cert: v.cert,
      key: v.key,
    },
    broker: {
      host: v['broker-host'],
      port: v['broker-port'],
      allowAnonymous: v['allow-anonymous'],
      users: v['broker-users'],
      limits: limitsFrom(v['broker-limit']),
    },
    stateDir: v['state-dir'],
    homeassistant: v.homeassistant,
    commands: { given: v.commands, maxAgeMs: v['commands-max-age'] * 1000 },
    relay: v.relay,
    healthIntervalMs: v['health-interval'],
    queueCapacity: v['queue-capacity'],
    heal: healConfig(v),
    actions: actionsConfig(argv, agentOptions.tokenSpec(), v),
    metrics: v.metrics === undefined ? undefined : (parseListen(v.metrics) as Listen),
    logLevel: v['log-level'],
    logFormat: v['log-format'],
    debug: v.debug,
    help: v.help,
  };
}
