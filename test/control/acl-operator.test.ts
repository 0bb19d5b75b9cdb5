/** The operator role in the broker's ACL (src/broker/acl.ts), and what it changes for agents and observers. */
import { describe, expect, it } from 'vitest';
import { authorizePublish, authorizeSubscribe, type Principal } from '../../src/broker/acl.js';
import { parseUsersFile } from '../../src/broker/users.js';

const user = (username: string, role: 'agent' | 'observer' | 'operator'): Principal => ({
  kind: 'user',
  username,
  role,
});
const ops = user('ops', 'operator');
const pi = user('pi-01', 'agent');
const dash = user('dash', 'observer');

describe('operator role', () => {
  it('an operator publishes requests to one agent or the fleet, and nothing else', () => {
    expect(authorizePublish(ops, 'replug/pi-01/request/reset')).toEqual({ allow: true });
    expect(authorizePublish(ops, 'replug/_fleet/request/republish')).toEqual({ allow: true });
    for (const t of [
      'replug/pi-01/status',
      'replug/pi-01/response/reset',
      'replug/ops/status',
      'other',
      '$SYS/x',
    ])
      expect(authorizePublish(ops, t).allow).toBe(false);
  });

  it('an operator reads like an observer, responses included', () => {
    for (const f of ['#', 'replug/+/response/#', 'replug/pi-01/response/list'])
      expect(authorizeSubscribe(ops, f)).toEqual({ allow: true });
  });

  it('an agent may not publish requests, not even under its own root, and reads the fleet topic', () => {
    expect(authorizePublish(pi, 'replug/pi-01/request/reset')).toEqual({
      allow: false,
      reason: 'agent pi-01 may not publish requests',
    });
    expect(authorizePublish(pi, 'replug/_fleet/request/reset').allow).toBe(false);
    expect(authorizePublish(pi, 'replug/pi-01/response/reset')).toEqual({ allow: true });
    expect(authorizeSubscribe(pi, 'replug/_fleet/request/+')).toEqual({ allow: true });
    expect(authorizeSubscribe(pi, 'replug/pi-01/request/+')).toEqual({ allow: true });
    expect(authorizeSubscribe(pi, 'replug/pi-02/request/+').allow).toBe(false);
  });

  it('an observer may not publish requests', () => {
    expect(authorizePublish(dash, 'replug/pi-01/request/reset').allow).toBe(false);
    expect(authorizePublish(dash, 'replug/_fleet/request/reset').allow).toBe(false);
  });

  it('the users file accepts the operator role', () => {
    const hash = 'scrypt$16384$8$1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5';
    expect(parseUsersFile(`ops:operator:${hash}\n`).get('ops')?.role).toBe('operator');
  });
});
