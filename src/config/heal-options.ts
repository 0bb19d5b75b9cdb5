/**
 * Option rows of the recovery ladder and the actions (issue 15; docs/heal.md), spread into `replug
 * agent`'s table in one block. `--on-up/--on-down/--on-heal/--restart-container` bind to the `--target`
 * before them, or to every target when given before any (heal.ts reads argv's order).
 */
import { kinds, OptionProblem } from '../cli/kinds.js';
import { splitList } from '../cli/options.js';
import { DEFAULT_LADDER, DEVICE_STEPS, type DeviceStep } from '../heal/types.js';

const H = 'Healing and actions (docs/heal.md)';

function parseSteps(text: string): DeviceStep[] {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === 'none' || t === '') return [];
  if (t === 'all') return [...DEVICE_STEPS];
  const names = splitList(t);
  const bad = names.filter((n) => !(DEVICE_STEPS as readonly string[]).includes(n));
  if (bad.length > 0)
    throw new OptionProblem(
      `has unknown step ${bad.map((b) => `"${b}"`).join(', ')}; choose from ${DEVICE_STEPS.join(',')}, all or off`,
    );
  return [...new Set(names)] as DeviceStep[];
}

const containerName = {
  metavar: 'NAME',
  parse(text: string) {
    // Docker's own rule for names and ids ([a-zA-Z0-9][a-zA-Z0-9_.-]*): nothing else reaches a URL path.
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,253}$/.test(text))
      throw new OptionProblem(`"${text}" is not a container name or id ([a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
    return text;
  },
};

export const healRows = {
  heal: {
    group: H,
    kind: { metavar: 'STEPS', parse: parseSteps },
    default: [] as DeviceStep[],
    defaultText: 'off',
    env: 'REPLUG_HEAL',
    help: `recovery ladder steps for wedged targets, comma-separated: ${DEVICE_STEPS.join(',')}, all, off`,
    more: ['climbed in that order after the session reopen; stops at the first step the session is up after'],
  },
  'heal-after-attempts': {
    group: H,
    kind: kinds.int(1, 10_000),
    default: DEFAULT_LADDER.afterAttempts,
    env: 'REPLUG_HEAL_AFTER_ATTEMPTS',
    help: 'climb after this many failed opens in a row',
  },
  'heal-after': {
    group: H,
    kind: kinds.int(1000, 86_400_000, 'MS'),
    default: DEFAULT_LADDER.afterMs,
    env: 'REPLUG_HEAL_AFTER_MS',
    help: 'or after the target was present but down this long',
  },
  'heal-step-wait': {
    group: H,
    kind: kinds.int(100, 3_600_000, 'MS'),
    default: DEFAULT_LADDER.stepWaitMs,
    env: 'REPLUG_HEAL_STEP_WAIT_MS',
    help: 'how long to wait for the session after each step',
  },
  'heal-max-runs': {
    group: H,
    kind: kinds.int(1, 10_000),
    default: DEFAULT_LADDER.maxRuns,
    env: 'REPLUG_HEAL_MAX_RUNS',
    help: 'climbs per target within --heal-window (the rate limit)',
  },
  'heal-window': {
    group: H,
    kind: kinds.int(1000, 604_800_000, 'MS'),
    default: DEFAULT_LADDER.windowMs,
    env: 'REPLUG_HEAL_WINDOW_MS',
    help: 'the rate limit window',
  },
  'heal-rest': {
    group: H,
    kind: kinds.int(0, 604_800_000, 'MS'),
    default: DEFAULT_LADDER.restMs,
    env: 'REPLUG_HEAL_REST_MS',
    help: 'after the last step failed, no new climb for this long',
  },
  'heal-port-shared': {
    group: H,
    kind: kinds.flag(),
    env: 'REPLUG_HEAL_PORT_SHARED',
    help: 'let port-power cycle a hub port whose hub also carries non-target devices',
  },
  'on-up': {
    group: H,
    kind: kinds.string('CMD'),
    multiple: true,
    help: 'run CMD (sh -c) when the target session comes up; after a --target: that target only',
    more: ['env: REPLUG_TARGET, _VID, _PID, _SERIAL, _BUS, _ADDRESS, _PORT, _DEVNODE, _EVENT'],
  },
  'on-down': {
    group: H,
    kind: kinds.string('CMD'),
    multiple: true,
    help: 'run CMD when the target session goes down (unplugged or wedged)',
  },
  'on-heal': {
    group: H,
    kind: kinds.string('CMD'),
    multiple: true,
    help: 'run CMD when a heal step brought the target back',
  },
  'action-timeout': {
    group: H,
    kind: kinds.int(100, 3_600_000, 'MS'),
    default: 30_000,
    env: 'REPLUG_ACTION_TIMEOUT_MS',
    help: 'a command still running after this is killed (SIGTERM, then SIGKILL)',
  },
  'restart-container': {
    group: H,
    kind: containerName,
    multiple: true,
    help: 'restart this container (Docker Engine API) when the target comes back after a replug or heal',
  },
  'docker-socket': {
    group: H,
    kind: kinds.path('SOCKET'),
    default: '/var/run/docker.sock',
    env: 'REPLUG_DOCKER_SOCKET',
    help: "Docker Engine API socket (podman's: /run/podman/podman.sock)",
  },
} as const;
