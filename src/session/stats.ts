/**
 * Per-target reconnect statistics for the `target/<key>/state` topic and the fleet view. Durations are
 * "device seen -> session up" in ms on the injected clock; percentiles use the nearest-rank method so a
 * reported p95 is always a duration that really happened.
 */
import type { ErrorInfo } from './events.js';

/** Nearest-rank percentile (p in 0..100) of unsorted values; undefined for an empty list. */
export function percentile(values: readonly number[], p: number): number | undefined {
  return nearestRank(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** Nearest-rank percentile of values already sorted ascending. */
function nearestRank(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)];
}

/** Index of the first element of `sorted` that is >= `v`. */
function lowerBound(sorted: readonly number[], v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface TargetStats {
  /** Open attempts in total. */
  attempts: number;
  /** Attempts that brought the session up. */
  ok: number;
  /** Attempts that failed (each is followed by a backoff while the device stays present). */
  failed: number;
  /** Times the session came up again after its first up: the replugs (or wedges) it survived. */
  reconnects: number;
  /** Liveness probes that failed while up (a wedged device). */
  probeFailures: number;
  lastOutcome?: 'ok' | 'failed';
  lastError?: ErrorInfo;
  lastDurationMs?: number;
  p50Ms?: number;
  p95Ms?: number;
}

/** Bounded so a months-long agent does not grow without limit; the newest samples win. */
const MAX_SAMPLES = 1000;

export class StatsRecorder {
  private attempts = 0;
  private ok = 0;
  private failed = 0;
  private probeFailures = 0;
  private lastOutcome: 'ok' | 'failed' | undefined;
  private lastError: ErrorInfo | undefined;
  /** The newest MAX_SAMPLES durations in arrival order (which one to evict), and the same ascending. */
  private durations: number[] = [];
  // Kept sorted as samples come and go, so that a snapshot (several per plug: every state change
  // publishes one) reads its percentiles without copying and sorting up to 1,000 samples twice; that
  // copy-and-sort was 6 % of everything a replug storm allocated (bench/footprint.mjs, issue 17).
  private sorted: number[] = [];

  attempt(): void {
    this.attempts++;
  }

  succeeded(durationMs: number): void {
    this.ok++;
    this.lastOutcome = 'ok';
    this.durations.push(durationMs);
    this.sorted.splice(lowerBound(this.sorted, durationMs), 0, durationMs);
    if (this.durations.length > MAX_SAMPLES) {
      const oldest = this.durations.shift() as number;
      this.sorted.splice(lowerBound(this.sorted, oldest), 1);
    }
  }

  failedAttempt(error: ErrorInfo): void {
    this.failed++;
    this.lastOutcome = 'failed';
    this.lastError = error;
  }

  probeFailed(error: ErrorInfo): void {
    this.probeFailures++;
    this.lastError = error;
  }

  snapshot(): TargetStats {
    const s: TargetStats = {
      attempts: this.attempts,
      ok: this.ok,
      failed: this.failed,
      reconnects: Math.max(0, this.ok - 1),
      probeFailures: this.probeFailures,
    };
    if (this.lastOutcome) s.lastOutcome = this.lastOutcome;
    if (this.lastError) s.lastError = { ...this.lastError };
    const last = this.durations.at(-1);
    if (last !== undefined) s.lastDurationMs = last;
    const p50 = nearestRank(this.sorted, 50);
    const p95 = nearestRank(this.sorted, 95);
    if (p50 !== undefined) s.p50Ms = p50;
    if (p95 !== undefined) s.p95Ms = p95;
    return s;
  }
}
