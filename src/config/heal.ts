/**
 * The ladder's and the actions' configuration from the agent's parsed values (heal-options.ts). The
 * per-target options bind to the `--target` before them in argv (`--target 10c4:ea60 --on-up CMD`); given
 * before any --target they apply to every target.
 */
import { tokenize } from '../cli/tokenize.js';
import type { LadderOptions } from '../heal/types.js';
import { parseTargetSpec, targetKey } from '../usb/ids.js';

export interface ActionSet {
  onUp: string[];
  onDown: string[];
  onHeal: string[];
  restartContainers: string[];
}

export interface HealConfig extends LadderOptions {
  portShared: boolean;
}

export interface ActionsConfig {
  timeoutMs: number;
  dockerSocket: string;
  /** For every target. */
  global: ActionSet;
  /** By target key (`vvvv:pppp[:SERIAL]`), for that target only. */
  byTarget: Record<string, ActionSet>;
}

const emptySet = (): ActionSet => ({ onUp: [], onDown: [], onHeal: [], restartContainers: [] });

const FIELD = {
  'on-up': 'onUp',
  'on-down': 'onDown',
  'on-heal': 'onHeal',
  'restart-container': 'restartContainers',
} as const satisfies Record<string, keyof ActionSet>;

/** The values heal-options.ts rows produce (a structural slice of the agent's parsed values). */
export interface HealValues {
  heal: LadderOptions['steps'];
  'heal-after-attempts': number;
  'heal-after': number;
  'heal-step-wait': number;
  'heal-max-runs': number;
  'heal-window': number;
  'heal-rest': number;
  'heal-port-shared': boolean;
  'action-timeout': number;
  'docker-socket': string;
}

export function healConfig(v: HealValues): HealConfig {
  return {
    steps: v.heal,
    afterAttempts: v['heal-after-attempts'],
    afterMs: v['heal-after'],
    stepWaitMs: v['heal-step-wait'],
    maxRuns: v['heal-max-runs'],
    windowMs: v['heal-window'],
    restMs: v['heal-rest'],
    portShared: v['heal-port-shared'],
  };
}

/**
 * Walks argv in order (the option table's values lose it). Values were validated by the table already;
 * a --target that does not parse was reported there, so it only moves the binding here.
 */
export function actionsConfig(
  argv: readonly string[],
  spec: Parameters<typeof tokenize>[1],
  v: HealValues,
): ActionsConfig {
  const global = emptySet();
  const byTarget: Record<string, ActionSet> = {};
  let current: ActionSet = global;
  for (const { flag, value } of tokenize(argv, spec, false).order) {
    if (flag === 'target' && typeof value === 'string') {
      const target = parseTargetSpec(value);
      if (typeof target === 'string') continue;
      const key = targetKey(target);
      current = byTarget[key] ?? emptySet();
      byTarget[key] = current;
      continue;
    }
    const field = FIELD[flag as keyof typeof FIELD];
    if (field && typeof value === 'string') current[field].push(value);
  }
  return { timeoutMs: v['action-timeout'], dockerSocket: v['docker-socket'], global, byTarget };
}

/** What runs for `key`: the global actions, then the target's own. */
export function actionsFor(config: ActionsConfig, key: string): ActionSet {
  const own = config.byTarget[key] ?? emptySet();
  const g = config.global;
  return {
    onUp: [...g.onUp, ...own.onUp],
    onDown: [...g.onDown, ...own.onDown],
    onHeal: [...g.onHeal, ...own.onHeal],
    restartContainers: [...new Set([...g.restartContainers, ...own.restartContainers])],
  };
}
