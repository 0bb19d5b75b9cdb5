import { describe, expect, it } from 'vitest';
import { matchesTarget } from '../../src/session/candidates.js';
import { parseTargetSpec, targetKey } from '../../src/usb/ids.js';

describe('a target that names several IDs (Coral: 1a6e:089a, then 18d1:9302 after its firmware loads)', () => {
  it('parses vvvv:pppp/vvvv:pppp[:SERIAL]; the key stays the first ID', () => {
    const spec = parseTargetSpec('1a6e:089a/18d1:9302');
    expect(spec).toEqual({ vid: '1a6e', pid: '089a', alt: [{ vid: '18d1', pid: '9302' }] });
    expect(targetKey(spec as never)).toBe('1a6e:089a');
    expect(parseTargetSpec('1a6e:089a/0x18D1:9302:SER/1')).toEqual({
      vid: '1a6e',
      pid: '089a',
      serial: 'SER/1',
      alt: [{ vid: '18d1', pid: '9302' }],
    });
  });

  it('a serial with a slash is still a serial; a bad other ID is named', () => {
    expect(parseTargetSpec('0403:6001:A/B')).toEqual({ vid: '0403', pid: '6001', serial: 'A/B' });
    expect(parseTargetSpec('1a6e:089a/zz:9302')).toContain('"zz:9302" in target');
    expect(parseTargetSpec('1a6e:089a/18d1')).toContain('vvvv:pppp/vvvv:pppp');
  });

  it('the session matches the device under either ID', () => {
    const spec = parseTargetSpec('1a6e:089a/18d1:9302') as never;
    expect(matchesTarget(spec, { vid: '1a6e', pid: '089a' })).toBe(true);
    expect(matchesTarget(spec, { vid: '18d1', pid: '9302' })).toBe(true);
    expect(matchesTarget(spec, { vid: '18d1', pid: '9303' })).toBe(false);
  });
});
