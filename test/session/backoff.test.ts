import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff, withJitter } from '../../src/session/backoff.js';

describe('backoff', () => {
  it('doubles from 250 ms and caps at 5000 ms by default', () => {
    const seq = Array.from({ length: 9 }, (_, i) => backoffDelay(DEFAULT_BACKOFF, i + 1));
    expect(seq).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
  });

  it('stays at the cap after thousands of failures (no Infinity/NaN)', () => {
    expect(backoffDelay(DEFAULT_BACKOFF, 5000)).toBe(5000);
  });

  it('honours configured initial, max and factor', () => {
    const b = resolveBackoff({ initialMs: 100, maxMs: 1000, factor: 3 });
    expect([1, 2, 3, 4].map((n) => backoffDelay(b, n))).toEqual([100, 300, 900, 1000]);
  });

  it('ignores undefined fields and rejects nonsense naming the field', () => {
    expect(resolveBackoff({ initialMs: undefined })).toEqual(DEFAULT_BACKOFF);
    expect(() => resolveBackoff({ factor: 0.5 })).toThrow(/factor/);
    expect(() => resolveBackoff({ initialMs: 10_000 })).toThrow(/maxMs/);
    expect(() => resolveBackoff({ jitter: 2 })).toThrow(/jitter/);
  });

  it('applies jitter only when configured, with the injected random source', () => {
    expect(withJitter(DEFAULT_BACKOFF, 1000, () => 0.9)).toBe(1000);
    const j = resolveBackoff({ jitter: 0.5 });
    expect(withJitter(j, 1000, () => 1)).toBe(500);
    expect(withJitter(j, 1000, () => 0)).toBe(1000);
  });
});
