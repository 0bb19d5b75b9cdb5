import { describe, expect, it } from 'vitest';
import {
  hex4,
  parseDecimalId,
  parseHexId,
  parseTargetSpec,
  targetKey,
  targetTopicKey,
} from '../../src/usb/ids.js';

describe('USB ids', () => {
  it('prints 4-digit lowercase unsigned hex, never a signed number', () => {
    expect(hex4(0x8566)).toBe('8566');
    expect(hex4(-31386)).toBe('8566');
    expect(hex4(1)).toBe('0001');
    expect(hex4(0xabcd)).toBe('abcd');
  });

  it.each([
    ['1209', 0x1209],
    ['0x1209', 0x1209],
    ['0XfFfF', 0xffff],
    ['1', 1],
  ])('parses hex %s', (text, value) => {
    expect(parseHexId(text)).toBe(value);
  });

  it.each(['', '0x', '12345', 'g001', '-1', '1.5', '0x-1'])('rejects hex %j', (text) => {
    expect(parseHexId(text)).toBeUndefined();
  });

  it('parses decimal ids for TEST_VID/TEST_PID within 0..65535 only', () => {
    expect(parseDecimalId('0')).toBe(0);
    expect(parseDecimalId('65535')).toBe(65535);
    expect(parseDecimalId('65536')).toBeUndefined();
    expect(parseDecimalId('0x10')).toBeUndefined();
    expect(parseDecimalId('-5')).toBeUndefined();
  });

  it('parses target specs and names the bad part', () => {
    expect(parseTargetSpec('1209:0001')).toEqual({ vid: '1209', pid: '0001' });
    expect(parseTargetSpec('0x0403:0x6001:FT:12')).toEqual({ vid: '0403', pid: '6001', serial: 'FT:12' });
    expect(parseTargetSpec('1209')).toContain('expected vvvv:pppp');
    expect(parseTargetSpec('xyz:0001')).toContain('"xyz" in target "xyz:0001" is not a vendor ID');
    expect(parseTargetSpec('1209:10000')).toContain('is not a product ID');
    expect(parseTargetSpec('1209:0001:')).toContain('has no serial');
  });

  it('builds keys for logs and topic-safe keys', () => {
    expect(targetKey({ vid: '1209', pid: '0001', serial: 'A/B' })).toBe('1209:0001:A/B');
    expect(targetTopicKey({ vid: '1209', pid: '0001' })).toBe('1209-0001');
    expect(targetTopicKey({ vid: '1209', pid: '0001', serial: 'A/B+#x' })).toBe('1209-0001-a_b_x');
  });
});
