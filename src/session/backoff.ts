/**
 * Retry delays for a session whose open or probe failed while the device is still present.
 * The original .NET tool retried every 250 ms; we start there and double, capped (issue 2: "250 ms doubling,
 * but it keeps trying while the device is present, capped at 5 s"). Pure functions: the runner owns time.
 */

export interface BackoffOptions {
  /** First retry delay in ms (default 250). */
  initialMs: number;
  /** Upper bound in ms (default 5000). */
  maxMs: number;
  /** Multiplier per consecutive failure (default 2). */
  factor: number;
  /**
   * Fraction 0..1 of the delay to randomise ("equal jitter"): delay * (1 - jitter * r). Off (0) by default
   * so a log reads as a predictable sequence; turn it on when many agents share one flaky hub.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 250,
  maxMs: 5000,
  factor: 2,
  jitter: 0,
});

/** Merges partial options over the defaults and rejects nonsense with a message naming the field. */
export function resolveBackoff(partial: Partial<BackoffOptions> = {}): BackoffOptions {
  const b = { ...DEFAULT_BACKOFF, ...stripUndefined(partial) };
  const problems: string[] = [];
  if (!Number.isFinite(b.initialMs) || b.initialMs < 0) problems.push('backoff initialMs must be >= 0');
  if (!Number.isFinite(b.maxMs) || b.maxMs < b.initialMs) problems.push('backoff maxMs must be >= initialMs');
  if (!Number.isFinite(b.factor) || b.factor < 1) problems.push('backoff factor must be >= 1');
  if (!Number.isFinite(b.jitter) || b.jitter < 0 || b.jitter > 1)
    problems.push('backoff jitter must be 0..1');
  if (problems.length > 0) throw new RangeError(problems.join('; '));
  return b;
}

/** Delay before retry number `failures` (1 = after the first failure), without jitter. */
export function backoffDelay(options: BackoffOptions, failures: number): number {
  const n = Math.max(1, Math.floor(failures));
  // Math.pow can overflow to Infinity after ~1000 failures; min() keeps it at the cap.
  const raw = options.initialMs * options.factor ** (n - 1);
  return Math.min(options.maxMs, Number.isFinite(raw) ? raw : options.maxMs);
}

/** Applies jitter with an injected random source (tests pass a fixed one). */
export function withJitter(options: BackoffOptions, delayMs: number, random: () => number): number {
  if (options.jitter <= 0) return delayMs;
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(delayMs * (1 - options.jitter * r));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
