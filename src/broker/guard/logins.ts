/**
 * Failed logins per source address (issue 11: ~59 guesses a second, no delay; with 64 parallel guessers a
 * legitimate login took 3.1 s instead of 37 ms; one warn line per attempt).
 *
 * - One password check at a time per source: a guesser's parallel CONNECTs queue behind each other instead
 *   of filling libuv's pool with scrypt runs (4 threads), so other sources' logins still find a thread.
 * - Past `failures` failed logins within `windowMs`, each next attempt from that source first waits
 *   250 ms, doubling per failure, up to `delayMaxMs`. A success forgets the source.
 * - `report` is called once per source per window: the first refusal, then a count of the rest.
 * Time is injected (now/sleep), so the rules are unit-tested without waiting.
 */

export interface LoginGuardOptions {
  failures: number;
  delayMaxMs: number;
  windowMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** One line's worth: the source, why the latest login was refused, how many since the previous line. */
  report?: (source: string, reason: string, count: number) => void;
}

interface SourceState {
  failures: number;
  lastFailureAt: number;
  /** The tail of this source's queue of checks. */
  tail: Promise<void>;
  waiting: number;
  reportedAt: number;
  unreported: number;
}

const FIRST_DELAY_MS = 250;
/** Attempts queued per source beyond which a CONNECT is refused at once (it would wait minutes anyway). */
export const MAX_QUEUED_PER_SOURCE = 64;

export interface LoginGuard {
  /**
   * Runs `check` in this source's turn, after its delay. Resolves with the check's result, or with
   * `undefined` without running it when the source already has MAX_QUEUED_PER_SOURCE attempts waiting.
   */
  turn<T>(source: string, check: () => Promise<T>): Promise<T | 'busy'>;
  failed(source: string, reason: string): void;
  succeeded(source: string): void;
  /** The delay the next attempt from this source would wait (tests, bench). */
  delayFor(source: string): number;
  readonly sources: number;
}

export function createLoginGuard(options: LoginGuardOptions): LoginGuard {
  const now = options.now ?? Date.now;
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.()));
  const states = new Map<string, SourceState>();

  const stateOf = (source: string): SourceState => {
    let state = states.get(source);
    const t = now();
    if (
      state &&
      state.waiting === 0 &&
      t - state.lastFailureAt > options.windowMs &&
      state.unreported === 0
    ) {
      states.delete(source);
      state = undefined;
    }
    if (!state) {
      state = {
        failures: 0,
        lastFailureAt: 0,
        tail: Promise.resolve(),
        waiting: 0,
        reportedAt: -Infinity,
        unreported: 0,
      };
      states.set(source, state);
    }
    if (t - state.lastFailureAt > options.windowMs) state.failures = 0;
    return state;
  };

  const delayOf = (state: SourceState): number => {
    const over = state.failures - options.failures;
    if (over < 0) return 0;
    return Math.min(options.delayMaxMs, FIRST_DELAY_MS * 2 ** Math.min(over, 30));
  };

  return {
    turn(source, check) {
      const state = stateOf(source);
      if (state.waiting >= MAX_QUEUED_PER_SOURCE) return Promise.resolve('busy' as const);
      state.waiting++;
      const run = state.tail.then(async () => {
        const delay = delayOf(state);
        if (delay > 0) await sleep(delay);
        return check();
      });
      state.tail = run.then(
        () => undefined,
        () => undefined,
      );
      return run.finally(() => {
        state.waiting--;
      });
    },
    failed(source, reason) {
      const state = stateOf(source);
      state.failures++;
      state.lastFailureAt = now();
      state.unreported++;
      if (now() - state.reportedAt >= options.windowMs) {
        options.report?.(source, reason, state.unreported);
        state.reportedAt = now();
        state.unreported = 0;
      }
    },
    succeeded(source) {
      const state = states.get(source);
      if (state) state.failures = 0;
    },
    delayFor(source) {
      return delayOf(stateOf(source));
    },
    get sources() {
      return states.size;
    },
  };
}
