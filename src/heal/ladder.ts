/**
 * The recovery ladder for one target as a pure state machine (STYLE habit 3, issue 15):
 * `ladderTransition(state, event, options)` returns the next state and the effects the runner executes (run
 * a step, publish a step's record). Time comes in on every event (`now`, monotonic ms), so thresholds, waits,
 * the rate limit and the rest are tested as tables with no timers (test/heal/ladder.test.ts).
 *
 *   watching --N failed opens | T present-but-down | wedged | request--> acting(step) --done--> waiting
 *      ^                                                                 ^                 |
 *      |  up after a step (stop at the first success)                    +--- climb -------+ deadline
 *      +--------------------------- resting (after the last step, --heal-rest) <-----------+ last step
 *
 * Safety lives here too: a climb never starts while the device is absent, never loops (after the last step
 * it rests and reports), and never runs more than `maxRuns` per `windowMs` for the target.
 */
import { ErrorCodes } from '../errors.js';
import type { ErrorInfo } from '../session/events.js';
import { LADDER, type LadderOptions, type StepName, type StepRecord, type Trigger } from './types.js';

type Climb = {
  trigger: Trigger;
  /** Index in the enabled steps. */
  index: number;
  stepStartedAt: number;
  /** A request for one step: no climbing after it. */
  single: boolean;
};

export type LadderPhase =
  | { name: 'watching' }
  | ({ name: 'acting' } & Climb)
  | ({ name: 'waiting'; deadline: number } & Climb)
  | { name: 'resting'; until: number };

export interface LadderState {
  phase: LadderPhase;
  present: boolean;
  up: boolean;
  /** Failed opens since the session was last up (or the device came). */
  failures: number;
  /** When the device was last seen present and not up (undefined while up or absent). */
  downSince: number | undefined;
  /** Start times of climbs within the window (the rate limit). */
  runs: number[];
  /** The last climb that brought the session back: a new trigger soon after starts one step higher. */
  lastSuccess: { at: number; step: StepName } | undefined;
  /** The rate limit was said for the current window (said once, not per trigger). */
  limitedSaid: boolean;
  /**
   * The last open failed because the device is busy or not ours to open (USB_BUSY, USB_ACCESS): another
   * program holds it, it is not wedged, and resetting it would break that program. No climb while so.
   */
  blocked: boolean;
  /**
   * The agent itself had this device (since it came): a session up, or an open that failed for another
   * reason than busy. A busy open after that is the agent's own earlier handle still closing (seen on the
   * real kernel: a cancelled transfer to a wedged device keeps the old claim of interface 0 for seconds),
   * not another program: it counts as a failed open.
   */
  ours: boolean;
}

export type LadderEvent =
  | { type: 'present'; now: number }
  | { type: 'gone'; now: number }
  | { type: 'up'; now: number }
  | { type: 'down'; now: number }
  | { type: 'failed'; now: number }
  /** An open failed for a reason no heal step fixes (busy, access denied). */
  | { type: 'blocked'; now: number }
  | { type: 'wedged'; now: number }
  | { type: 'tick'; now: number }
  /** The step's action finished (error: it could not run). */
  | { type: 'done'; now: number; error?: ErrorInfo }
  | { type: 'request'; now: number; step?: StepName };

export type LadderEffect =
  | { type: 'run'; step: Exclude<StepName, 'reopen'> }
  | { type: 'record'; record: StepRecord }
  /** The answer to a `request` event. */
  | { type: 'reply'; accepted: boolean; error?: ErrorInfo };

export interface LadderTransition {
  state: LadderState;
  effects: LadderEffect[];
}

export const initialLadder: LadderState = {
  phase: { name: 'watching' },
  present: false,
  up: false,
  failures: 0,
  downSince: undefined,
  runs: [],
  lastSuccess: undefined,
  limitedSaid: false,
  blocked: false,
  ours: false,
};

/** reopen first, then the device steps turned on, in LADDER order. */
export function enabledSteps(options: Pick<LadderOptions, 'steps'>): StepName[] {
  return LADDER.filter((s) => s === 'reopen' || (options.steps as readonly string[]).includes(s));
}

/** Steps whose failure means the ladder refused rather than the step breaking. */
const REFUSALS: readonly string[] = [ErrorCodes.HEAL_REFUSED, ErrorCodes.HEAL_NOT_PRESENT];

export function ladderTransition(s: LadderState, e: LadderEvent, o: LadderOptions): LadderTransition {
  const state = observe(s, e);
  switch (state.phase.name) {
    case 'watching':
      return watching(state, e, o);
    case 'acting':
      return acting(state, state.phase, e, o);
    case 'waiting':
      return waiting(state, state.phase, e, o);
    case 'resting':
      return resting(state, state.phase, e, o);
  }
}

/** The facts every phase keeps: presence, up, failures, how long down. */
function observe(s: LadderState, e: LadderEvent): LadderState {
  switch (e.type) {
    case 'present':
      return { ...s, present: true, downSince: s.up ? undefined : (s.downSince ?? e.now) };
    case 'gone':
      return {
        ...s,
        present: false,
        up: false,
        failures: 0,
        downSince: undefined,
        blocked: false,
        ours: false,
      };
    case 'up':
      return { ...s, up: true, present: true, failures: 0, downSince: undefined, blocked: false, ours: true };
    case 'down':
      return { ...s, up: false, downSince: s.present && !s.blocked ? (s.downSince ?? e.now) : undefined };
    case 'failed':
      return failedOpen(s, e.now);
    case 'blocked':
      if (s.ours) return failedOpen(s, e.now);
      return { ...s, up: false, failures: 0, downSince: undefined, blocked: true };
    case 'wedged':
      return { ...s, up: false, downSince: e.now, ours: true };
    default:
      return s;
  }
}

function failedOpen(s: LadderState, now: number): LadderState {
  return {
    ...s,
    up: false,
    failures: s.failures + 1,
    downSince: s.downSince ?? now,
    blocked: false,
    ours: true,
  };
}

function watching(s: LadderState, e: LadderEvent, o: LadderOptions): LadderTransition {
  if (e.type === 'request') return start(s, 'request', e.now, o, e.step);
  if (!s.present || s.up || s.blocked) return { state: s, effects: [] };
  if (e.type === 'wedged') return start(s, 'wedged', e.now, o);
  // A busy open that observe() counted as ours is a failed open too (s.blocked stays false for it).
  const failedOpen = e.type === 'failed' || e.type === 'blocked';
  if (failedOpen && s.failures >= o.afterAttempts) return start(s, 'attempts', e.now, o);
  if (e.type === 'tick' && s.downSince !== undefined && e.now - s.downSince >= o.afterMs)
    return start(s, 'down-time', e.now, o);
  return { state: s, effects: [] };
}

function start(
  s: LadderState,
  trigger: Trigger,
  now: number,
  o: LadderOptions,
  only?: StepName,
): LadderTransition {
  const steps = enabledSteps(o);
  const reply = (accepted: boolean, error?: ErrorInfo): LadderEffect[] =>
    trigger === 'request' ? [{ type: 'reply', accepted, ...(error ? { error } : {}) }] : [];
  if (only !== undefined && !steps.includes(only)) {
    const error = { code: ErrorCodes.HEAL_REFUSED, message: `heal step ${only} is not turned on (--heal)` };
    return { state: s, effects: reply(false, error) };
  }
  if (!s.present) {
    const error = { code: ErrorCodes.HEAL_NOT_PRESENT, message: 'the target is not present' };
    return { state: s, effects: reply(false, error) };
  }
  let index = only !== undefined ? steps.indexOf(only) : first(s, trigger, now, o, steps);
  if (index >= steps.length) index = steps.length - 1;
  const runs = s.runs.filter((t) => now - t < o.windowMs);
  if (runs.length >= o.maxRuns) {
    const error = {
      code: ErrorCodes.HEAL_RATE_LIMITED,
      message: `${runs.length} heal climbs within ${Math.round(o.windowMs / 1000)} s; resting (--heal-max-runs)`,
    };
    const record: StepRecord = { step: steps[index] as StepName, outcome: 'refused', trigger, ms: 0, error };
    const said = s.limitedSaid ? [] : [{ type: 'record', record } as const];
    return { state: { ...s, runs, limitedSaid: true }, effects: [...said, ...reply(false, error)] };
  }
  const climb: Climb = { trigger, index, stepStartedAt: now, single: only !== undefined };
  const next = { ...s, runs: [...runs, now], limitedSaid: false };
  return act(next, climb, now, o, reply(true));
}

/**
 * Where a climb starts. After N failed opens or T down, the session's reopen has failed already: start at
 * the first device step. After a wedge the session is reopening now: that is the first step. A trigger
 * within the window of a climb that worked starts one step above the one that worked (a device that wedges
 * again right after each reopen gets a reset, not the same reopen forever).
 */
function first(s: LadderState, trigger: Trigger, now: number, o: LadderOptions, steps: StepName[]): number {
  let index = trigger === 'wedged' ? 0 : Math.min(1, steps.length - 1);
  if (s.lastSuccess && now - s.lastSuccess.at < o.windowMs)
    index = Math.max(index, steps.indexOf(s.lastSuccess.step) + 1);
  return index;
}

/** Begin step `climb.index`: reopen is the session's own retry, so it goes straight to waiting. */
function act(
  s: LadderState,
  climb: Climb,
  now: number,
  o: LadderOptions,
  effects: LadderEffect[] = [],
): LadderTransition {
  const step = enabledSteps(o)[climb.index] as StepName;
  const at: Climb = {
    trigger: climb.trigger,
    index: climb.index,
    single: climb.single,
    stepStartedAt: now,
  };
  if (step === 'reopen')
    return { state: { ...s, phase: { name: 'waiting', ...at, deadline: now + o.stepWaitMs } }, effects };
  return { state: { ...s, phase: { name: 'acting', ...at } }, effects: [...effects, { type: 'run', step }] };
}

function acting(s: LadderState, climb: Climb, e: LadderEvent, o: LadderOptions): LadderTransition {
  if (e.type === 'request') return busy(s);
  if (e.type !== 'done') return { state: s, effects: [] };
  if (e.error) {
    const outcome = REFUSALS.includes(e.error.code) ? 'refused' : 'error';
    return climbOn(s, climb, e.now, o, outcome, e.error);
  }
  if (s.up) return success(s, climb, e.now, o);
  return {
    state: { ...s, phase: { ...climb, name: 'waiting', deadline: e.now + o.stepWaitMs } },
    effects: [],
  };
}

function waiting(
  s: LadderState,
  climb: Climb & { deadline: number },
  e: LadderEvent,
  o: LadderOptions,
): LadderTransition {
  if (e.type === 'request') return busy(s);
  if (e.type === 'up') return success(s, climb, e.now, o);
  if (e.type !== 'tick' || e.now < climb.deadline) return { state: s, effects: [] };
  return climbOn(s, climb, e.now, o, 'down');
}

function resting(
  s: LadderState,
  rest: { until: number },
  e: LadderEvent,
  o: LadderOptions,
): LadderTransition {
  // A request is a person (or the fleet) asking: it may end the rest, within the rate limit.
  if (e.type === 'request') return start({ ...s, phase: { name: 'watching' } }, 'request', e.now, o, e.step);
  const over = e.type === 'tick' && e.now >= rest.until;
  if (!over && e.type !== 'up' && e.type !== 'gone') return { state: s, effects: [] };
  // Thresholds count again from now: the rest must not end in an immediate climb.
  const downSince = s.present && !s.up ? e.now : undefined;
  return { state: { ...s, phase: { name: 'watching' }, failures: 0, downSince }, effects: [] };
}

function success(s: LadderState, climb: Climb, now: number, o: LadderOptions): LadderTransition {
  const step = enabledSteps(o)[climb.index] as StepName;
  const record: StepRecord = { step, outcome: 'up', trigger: climb.trigger, ms: now - climb.stepStartedAt };
  return {
    state: { ...s, phase: { name: 'watching' }, lastSuccess: { at: now, step } },
    effects: [{ type: 'record', record }],
  };
}

/** The step did not bring the session back: the next step, or rest after the last (never loop). */
function climbOn(
  s: LadderState,
  climb: Climb,
  now: number,
  o: LadderOptions,
  outcome: 'down' | 'error' | 'refused',
  error?: ErrorInfo,
): LadderTransition {
  const steps = enabledSteps(o);
  const step = steps[climb.index] as StepName;
  const base = { step, outcome, trigger: climb.trigger, ms: now - climb.stepStartedAt };
  const record: StepRecord = error ? { ...base, error } : { ...base };
  if (!s.present) {
    // Unplugged during the climb: nothing left to heal; the next plug starts from scratch.
    return { state: { ...s, phase: { name: 'watching' } }, effects: [{ type: 'record', record }] };
  }
  if (climb.single) {
    return { state: { ...s, phase: { name: 'watching' } }, effects: [{ type: 'record', record }] };
  }
  const nextIndex = climb.index + 1;
  if (nextIndex >= steps.length) {
    const rested = { ...s, phase: { name: 'resting', until: now + o.restMs } as const };
    return { state: rested, effects: [{ type: 'record', record: { ...record, next: 'rest' } }] };
  }
  const next = steps[nextIndex] as StepName;
  const climbed = act(s, { ...climb, index: nextIndex }, now, o);
  return { ...climbed, effects: [{ type: 'record', record: { ...record, next } }, ...climbed.effects] };
}

function busy(s: LadderState): LadderTransition {
  const error = { code: ErrorCodes.HEAL_BUSY, message: 'a heal climb is under way for this target' };
  return { state: s, effects: [{ type: 'reply', accepted: false, error }] };
}
