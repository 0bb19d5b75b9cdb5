/** `replug watch --json` lines: the written-out fast path must print exactly what normalize() describes. */
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { normalize, normalizedLine } from '../../src/fleet/output.js';
import type { FleetMessage } from '../../src/fleet/types.js';
import { buildStatus, device, eventFor, infoFor, msg, T0, targetFor } from './sim.js';

function lines(messages: FleetMessage[]): { fast: string; slow: string }[] {
  let state = emptyFleet();
  return messages.map((m) => {
    const r = reduce(state, m);
    state = r.state;
    return {
      fast: normalizedLine(m, r.outcome, r.lateWill),
      slow: JSON.stringify(normalize(m, r.outcome, r.lateWill)),
    };
  });
}

describe('normalizedLine', () => {
  it('is JSON.stringify(normalize()) for every kind: accepted, target, late will, cleared, rejected', () => {
    const withProps: FleetMessage = {
      ...msg(
        'replug/pi/event',
        eventFor('reconnect.succeeded', { target: '1209:0001', attempts: 1, device, durationMs: 40 }, 5, 7),
      ),
      userProperties: { 'x-trace': ['a', 'b"\\'] },
    };
    const got = lines([
      msg('replug/pi/status', buildStatus('online', 7, T0), { retained: true }),
      msg('replug/pi/status', buildStatus('offline', 6, T0 + 5)),
      msg('replug/pi/info', infoFor('pi', 7)),
      msg('replug/pi/target/1209-0001-abc123/state', targetFor(7)),
      withProps,
      msg('replug/pi/info', ''),
      msg('replug/pi/info', '{not json'),
      msg('replug/pi\u0007x/status', buildStatus('online', 1, T0)),
      msg('replug/p\u2028i/status', buildStatus('online', 1, T0)),
    ]);
    expect(got.length).toBe(9);
    for (const { fast, slow } of got) expect(fast).toBe(slow);
    // Some of them took the fast path (accepted), some the fallback (cleared, rejected).
    const kinds = got.map((l) => JSON.parse(l.fast).kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['status', 'info', 'target', 'event', 'cleared', 'rejected']),
    );
    expect(JSON.parse(got[1]?.fast ?? '').lateWill).toBe(true);
  });
});
