import { describe, expect, it } from 'vitest';
import { percentile, StatsRecorder } from '../../src/session/stats.js';

/** A seeded generator (mulberry32), so a failure names the sequence that caused it. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('StatsRecorder percentiles', () => {
  it('are the nearest-rank percentiles of the newest 1,000 durations, through evictions and ties', () => {
    for (const seed of [1, 2, 3]) {
      const next = random(seed);
      const rec = new StatsRecorder();
      const all: number[] = [];
      for (let i = 0; i < 2500; i++) {
        // Few distinct values, so that ties and the eviction of one of several equal samples happen.
        const d = Math.floor(next() * 50) * 10;
        rec.succeeded(d);
        all.push(d);
        if (i % 97 === 0 || i === 2499) {
          const window = all.slice(-1000);
          const snap = rec.snapshot();
          expect(snap.p50Ms, `seed ${seed} after ${i + 1}`).toBe(percentile(window, 50));
          expect(snap.p95Ms, `seed ${seed} after ${i + 1}`).toBe(percentile(window, 95));
          expect(snap.lastDurationMs).toBe(d);
        }
      }
    }
  });

  it('has no percentiles before the first success', () => {
    const snap = new StatsRecorder().snapshot();
    expect(snap.p50Ms).toBeUndefined();
    expect(snap.p95Ms).toBeUndefined();
  });

  it('percentile() takes unsorted values and leaves them as they were', () => {
    const values = [40, 10, 30, 20];
    expect(percentile(values, 50)).toBe(20);
    expect(percentile(values, 95)).toBe(40);
    expect(percentile(values, 0)).toBe(10);
    expect(values).toEqual([40, 10, 30, 20]);
    expect(percentile([], 50)).toBeUndefined();
  });
});
