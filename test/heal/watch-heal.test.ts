import { describe, expect, it } from 'vitest';
import { healText } from '../../src/fleet/render.js';
import { countRecord, noCounts } from '../../src/heal/counts.js';

describe('replug watch shows the heal counts of a target', () => {
  it('healed/climbs once a climb ran; nothing before or without --heal', () => {
    expect(healText({})).toBe('');
    expect(healText({ heal: noCounts() })).toBe('');
    let c = countRecord(
      noCounts(),
      { step: 'reset', outcome: 'down', trigger: 'attempts', ms: 1, next: 'reauthorize' },
      1,
      true,
    );
    c = countRecord(c, { step: 'reauthorize', outcome: 'up', trigger: 'attempts', ms: 1 }, 2, false);
    expect(c).toMatchObject({
      climbs: 1,
      healed: 1,
      steps: { reset: { tried: 1, up: 0 }, reauthorize: { tried: 1, up: 1 } },
    });
    expect(healText({ heal: c })).toBe(' healed 1/1');
  });
});
