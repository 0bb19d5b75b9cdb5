import { describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_V8_FLAGS, v8FlagsFor } from '../../src/bin/v8-flags.js';

describe('v8FlagsFor', () => {
  it('gives the agent the young-generation cap and one-shot commands nothing', () => {
    expect(v8FlagsFor(['agent', '--id', 'x'], [], {})).toBe(DEFAULT_AGENT_V8_FLAGS);
    expect(v8FlagsFor(['list'], [], {})).toBeUndefined();
    expect(v8FlagsFor(['watch'], [], {})).toBeUndefined();
    expect(v8FlagsFor([], [], {})).toBeUndefined();
  });

  it("leaves the young generation alone when the user sized it on node's command line or in NODE_OPTIONS", () => {
    expect(v8FlagsFor(['agent'], ['--max-semi-space-size=8'], {})).toBeUndefined();
    expect(v8FlagsFor(['agent'], [], { NODE_OPTIONS: '--semi-space-growth-factor=2' })).toBeUndefined();
    expect(v8FlagsFor(['agent'], [], { NODE_OPTIONS: '--max_semi_space_size=4' })).toBeUndefined();
    expect(v8FlagsFor(['agent'], ['--max-old-space-size=64'], {})).toBe(DEFAULT_AGENT_V8_FLAGS);
  });

  it('REPLUG_V8_FLAGS replaces the default: empty for none, or flags of its own for any command', () => {
    expect(v8FlagsFor(['agent'], [], { REPLUG_V8_FLAGS: '' })).toBeUndefined();
    expect(v8FlagsFor(['agent'], [], { REPLUG_V8_FLAGS: '  ' })).toBeUndefined();
    expect(v8FlagsFor(['watch'], [], { REPLUG_V8_FLAGS: ' --stack-size=2000 ' })).toBe('--stack-size=2000');
  });
});
