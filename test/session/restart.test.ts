/**
 * The `restart` machine event (issue 18's restart request): up and starting close (or abort) and start
 * again on the same device, with the reason said; backoff retries now; anything else stays.
 */
import { describe, expect, it } from 'vitest';
import { type MachineState, transition } from '../../src/session/machine.js';
import type { UsbDevice } from '../../src/usb/types.js';

const A: UsbDevice = { key: 'port:1-1', vid: '1209', pid: '0001', bus: 1, address: 4, portPath: '1-1' };
const H = { h: 1 };
type S = MachineState<typeof H>;
const opts = { delayFor: () => 250, probe: true };
const restart = { type: 'restart' } as const;

describe('session machine: restart', () => {
  it('up: closes, then starts again on the same device once closed', () => {
    const up: S = { name: 'up', device: A, handle: H };
    const out = transition(up, restart, opts);
    expect(out.state).toEqual({
      name: 'terminating',
      device: A,
      awaitingOpen: false,
      next: { kind: 'start', device: A, why: 'restart requested' },
    });
    expect(out.effects.map((e) => e.type)).toEqual(['cancelProbeTimer', 'abort', 'emit', 'close']);
    const closed = transition(out.state, { type: 'closed' }, opts);
    expect(closed.state).toMatchObject({ name: 'starting', device: A, attempt: 1 });
    expect(closed.effects[0]).toMatchObject({ type: 'open', device: A });
    expect(closed.effects[1]).toMatchObject({
      type: 'emit',
      event: { state: 'starting', reason: 'restart requested' },
    });
  });

  it('starting: aborts the open and starts again after it ended', () => {
    const starting: S = { name: 'starting', device: A, attempt: 2, failures: 1 };
    const out = transition(starting, restart, opts);
    expect(out.state).toMatchObject({ name: 'terminating', awaitingOpen: true, next: { kind: 'start' } });
    expect(
      transition(out.state, { type: 'open.failed', error: { code: 'X', message: 'x' } }, opts).state,
    ).toMatchObject({
      name: 'starting',
      attempt: 1,
    });
  });

  it('backoff: retries now; waiting, terminating and stopped stay', () => {
    const backoff: S = { name: 'backoff', device: A, attempt: 2, failures: 2, delayMs: 500 };
    const out = transition(backoff, restart, opts);
    expect(out.state).toMatchObject({ name: 'starting', attempt: 1, failures: 0 });
    expect(out.effects[0]).toEqual({ type: 'cancelTimer' });
    const term: S = { name: 'terminating', device: A, awaitingOpen: false, next: { kind: 'wait' } };
    for (const s of [{ name: 'waiting' }, term, { name: 'stopped' }] as S[])
      expect(transition(s, restart, opts)).toEqual({ state: s, effects: [] });
  });
});
