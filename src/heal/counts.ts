/**
 * Heal counts per target, for `target/<key>/state` (`heal`), `health` (totals), Home Assistant's
 * diagnostic entity and `replug watch`. A pure fold over the ladder's records.
 */
import type { StepName, StepOutcome, StepRecord } from './types.js';

export interface HealCounts {
  climbs: number;
  /** Climbs after which the session was up. */
  healed: number;
  /** Climbs that ran the last step and rested. */
  exhausted: number;
  /** Steps not run: a shared hub, not the target, the rate limit. */
  refused: number;
  steps: Partial<Record<StepName, { tried: number; up: number }>>;
  last?: { step: StepName; outcome: StepOutcome; ts: number };
}

export const noCounts = (): HealCounts => ({ climbs: 0, healed: 0, exhausted: 0, refused: 0, steps: {} });

/** `startsClimb`: this record is the first of a climb (the runner knows; the record does not say). */
export function countRecord(c: HealCounts, r: StepRecord, ts: number, startsClimb: boolean): HealCounts {
  const steps = { ...c.steps };
  if (r.outcome !== 'refused') {
    const s = steps[r.step] ?? { tried: 0, up: 0 };
    steps[r.step] = { tried: s.tried + 1, up: s.up + (r.outcome === 'up' ? 1 : 0) };
  }
  return {
    climbs: c.climbs + (startsClimb ? 1 : 0),
    healed: c.healed + (r.outcome === 'up' ? 1 : 0),
    exhausted: c.exhausted + (r.next === 'rest' ? 1 : 0),
    refused: c.refused + (r.outcome === 'refused' ? 1 : 0),
    steps,
    last: { step: r.step, outcome: r.outcome, ts },
  };
}

export function totals(all: readonly HealCounts[]) {
  const sum = (f: (c: HealCounts) => number) => all.reduce((n, c) => n + f(c), 0);
  return {
    climbs: sum((c) => c.climbs),
    healed: sum((c) => c.healed),
    exhausted: sum((c) => c.exhausted),
    refused: sum((c) => c.refused),
  };
}
