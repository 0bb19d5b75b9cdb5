import { describe, expect, it } from 'vitest';
import { anonymousAllowed, checkListenPolicy, isLoopbackHost } from '../../src/broker/policy.js';
import { ErrorCodes, ReplugError } from '../../src/errors.js';

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.2', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.200.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['127.example.com', false],
    [undefined, false],
  ])('%s -> %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe('checkListenPolicy', () => {
  it('allows loopback without users', () => {
    expect(() => checkListenPolicy({ host: '127.0.0.1' })).not.toThrow();
  });
  it('refuses a non-loopback listener without users or --allow-anonymous', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      let caught: unknown;
      try {
        checkListenPolicy({ host });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ReplugError);
      expect((caught as ReplugError).code).toBe(ErrorCodes.BROKER_AUTH_REQUIRED);
      expect((caught as ReplugError).message).toContain(host);
      expect((caught as ReplugError).hint).toContain('--allow-anonymous');
    }
  });
  it('accepts a non-loopback listener with users or an explicit --allow-anonymous', () => {
    expect(() => checkListenPolicy({ host: '0.0.0.0', usersFile: 'users' })).not.toThrow();
    expect(() => checkListenPolicy({ host: '0.0.0.0', allowAnonymous: true })).not.toThrow();
    expect(() => checkListenPolicy({ host: '0.0.0.0', allowAnonymous: false })).toThrow(ReplugError);
  });
});

describe('anonymousAllowed', () => {
  it('allows loopback peers; everyone only with an explicit true', () => {
    expect(anonymousAllowed(undefined, '127.0.0.1')).toBe(true);
    expect(anonymousAllowed(undefined, '::ffff:127.0.0.1')).toBe(true);
    expect(anonymousAllowed(undefined, '10.200.0.2')).toBe(false);
    expect(anonymousAllowed(undefined, undefined)).toBe(false);
    expect(anonymousAllowed(true, '10.200.0.2')).toBe(true);
    expect(anonymousAllowed(false, '127.0.0.1')).toBe(true);
    expect(anonymousAllowed(false, '10.200.0.2')).toBe(false);
  });
});
