/**
 * The recovery ladder's vocabulary (issue 15): its steps in climbing order, what triggers a climb, and the
 * record of one step that becomes a `heal.step` event.
 */
import type { ErrorInfo } from '../session/events.js';

/**
 * Climbing order, gentlest first. `reopen` is the session's own retry (no device action); the others act
 * on the device: USBDEVFS_RESET, sysfs `authorized` 0/1, the hub port's `disable` 1/0, driver unbind/bind.
 */
export const LADDER = ['reopen', 'reset', 'reauthorize', 'port-power', 'rebind'] as const;
export type StepName = (typeof LADDER)[number];

/** The steps a user can turn on with --heal (reopen is always the session's own). */
export const DEVICE_STEPS = ['reset', 'reauthorize', 'port-power', 'rebind'] as const satisfies StepName[];
export type DeviceStep = (typeof DEVICE_STEPS)[number];

/**
 * attempts: N opens in a row failed; down-time: present but not up for T; wedged: the liveness probe
 * failed; request: asked for (requestHeal, issue 18's `reset` request).
 */
export type Trigger = 'attempts' | 'down-time' | 'wedged' | 'request';

/**
 * up: the session was up after the step (the ladder stops); down: the step ran and the session was still
 * down when the wait ended; error: the step could not run (permission, no such attribute); refused: the
 * ladder would not run it (a shared hub, not the target, the rate limit).
 */
export type StepOutcome = 'up' | 'down' | 'error' | 'refused';

export interface StepRecord {
  step: StepName;
  outcome: StepOutcome;
  trigger: Trigger;
  /** From the step's start to its outcome (action + wait for the session). */
  ms: number;
  error?: ErrorInfo;
  /** What the ladder does next: the next step, `rest` after the last one, absent when it stopped. */
  next?: StepName | 'rest';
}

export interface LadderOptions {
  /** The device steps turned on (--heal), in any order; the ladder climbs them in LADDER order. */
  steps: readonly DeviceStep[];
  /** Failed opens in a row that start a climb (--heal-after-attempts). */
  afterAttempts: number;
  /** Present but not up this long starts a climb (--heal-after, ms). */
  afterMs: number;
  /** How long to wait for the session after a step (--heal-step-wait, ms). */
  stepWaitMs: number;
  /** Climbs per target within windowMs (--heal-max-runs, --heal-window). */
  maxRuns: number;
  windowMs: number;
  /** After the last step failed: no new climb for this long (--heal-rest, ms). */
  restMs: number;
}

export const DEFAULT_LADDER: Readonly<Omit<LadderOptions, 'steps'>> = Object.freeze({
  afterAttempts: 5,
  afterMs: 30_000,
  stepWaitMs: 20_000,
  maxRuns: 3,
  windowMs: 3_600_000,
  restMs: 600_000,
});
