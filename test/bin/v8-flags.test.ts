import { describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_V8_FLAGS, v8FlagsFor } from '../../src/bin/v8-flags.js';

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
