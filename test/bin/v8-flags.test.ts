import { describe, expect, it } from 'vitest';
import {
  DEFAULT_AGENT_V8_FLAGS,
  holdOptimizer,
  holdsOptimizer,
  OPTIMIZER_HOLD_MAX_MS,
  v8FlagsFor,
} from '../../src/bin/v8-flags.js';

describe('v8FlagsFor', () => {
  it('gives the agent the young-generation and heap-growing defaults, one-shot commands nothing', () => {
    expect(DEFAULT_AGENT_V8_FLAGS).toBe('--semi-space-growth-factor=1 --heap-growing-percent=50');
    expect(v8FlagsFor(['agent', '--id', 'x'], [], {})).toBe(DEFAULT_AGENT_V8_FLAGS);
    expect(v8FlagsFor(['list'], [], {})).toBeUndefined();
    expect(v8FlagsFor(['watch'], [], {})).toBeUndefined();
    expect(v8FlagsFor([], [], {})).toBeUndefined();
  });

  it("drops a default when the user set its family on node's command line or in NODE_OPTIONS", () => {
    expect(v8FlagsFor(['agent'], ['--max-semi-space-size=8'], {})).toBe('--heap-growing-percent=50');
    expect(v8FlagsFor(['agent'], [], { NODE_OPTIONS: '--semi-space-growth-factor=2' })).toBe(
      '--heap-growing-percent=50',
    );
    expect(v8FlagsFor(['agent'], [], { NODE_OPTIONS: '--max_semi_space_size=4' })).toBe(
      '--heap-growing-percent=50',
    );
    expect(v8FlagsFor(['agent'], ['--heap-growing-percent=20'], {})).toBe('--semi-space-growth-factor=1');
    expect(
      v8FlagsFor(['agent'], ['--heap-growing-percent=20'], { NODE_OPTIONS: '--min-semi-space-size=2' }),
    ).toBeUndefined();
    expect(v8FlagsFor(['agent'], ['--max-old-space-size=64'], {})).toBe(DEFAULT_AGENT_V8_FLAGS);
  });

  it('REPLUG_V8_FLAGS replaces the defaults: empty for none, or flags of its own for any command', () => {
    expect(v8FlagsFor(['agent'], [], { REPLUG_V8_FLAGS: '' })).toBeUndefined();
    expect(v8FlagsFor(['agent'], [], { REPLUG_V8_FLAGS: '  ' })).toBeUndefined();
    expect(v8FlagsFor(['watch'], [], { REPLUG_V8_FLAGS: ' --stack-size=2000 ' })).toBe('--stack-size=2000');
  });
});

describe('holdsOptimizer', () => {
  it('holds the optimizing compiler for the agent only, unless the user chose its tiers or REPLUG_V8_FLAGS', () => {
    expect(holdsOptimizer(['agent'], [], {})).toBe(true);
    expect(holdsOptimizer(['list'], [], {})).toBe(false);
    expect(holdsOptimizer(['agent'], [], { REPLUG_V8_FLAGS: '' })).toBe(false);
    expect(holdsOptimizer(['agent'], ['--no-opt'], {})).toBe(false);
    expect(holdsOptimizer(['agent'], ['--turbofan'], {})).toBe(false);
    expect(holdsOptimizer(['agent'], ['--max-opt=1'], {})).toBe(false);
    expect(holdsOptimizer(['agent'], [], { NODE_OPTIONS: '--jitless' })).toBe(false);
    expect(holdsOptimizer(['agent'], ['--max-old-space-size=64', '--optimize-for-size'], {})).toBe(true);
  });
});

describe('holdOptimizer', () => {
  function fakeTimer() {
    const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
    return {
      timers,
      setTimeout(fn: () => void, ms: number) {
        const t = { fn, ms, cleared: false };
        timers.push(t);
        return t;
      },
      clearTimeout(t: unknown) {
        (t as { cleared: boolean }).cleared = true;
      },
    };
  }

  it('sets --no-turbofan at once and --turbofan on release, once', () => {
    const set: string[] = [];
    const timer = fakeTimer();
    const release = holdOptimizer((f) => set.push(f), timer);
    expect(set).toEqual(['--no-turbofan']);
    release();
    release();
    expect(set).toEqual(['--no-turbofan', '--turbofan']);
    expect(timer.timers[0]?.cleared).toBe(true);
  });

  it('releases by itself when start-up never reports ready', () => {
    const set: string[] = [];
    const timer = fakeTimer();
    const release = holdOptimizer((f) => set.push(f), timer);
    expect(timer.timers[0]?.ms).toBe(OPTIMIZER_HOLD_MAX_MS);
    timer.timers[0]?.fn();
    release();
    expect(set).toEqual(['--no-turbofan', '--turbofan']);
  });
});
