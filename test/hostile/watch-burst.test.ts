/**
 * Issue 12: under a burst of 20,000 hostile payloads legitimate events were delayed up to 5.3 s: every
 * message was checked in arrival order. The intake (src/fleet/intake.ts) serves sources with a record
 * of valid messages first. Replayed with the real decoder and reducer on fake time; the delay figures
 * with a real broker come from `node bench/hostile-watch.mjs --only burst`.
 */
import { describe, expect, it } from 'vitest';
import { agentId, emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { FleetIntake } from '../../src/fleet/intake.js';
import { eventFor, msg } from '../fleet/sim.js';

const A = 'mqtt://a:1883';

describe('a burst of hostile payloads (issue 12)', () => {
  it('a burst of hostile payloads waiting to be checked does not hold back an agent that has been publishing', () => {
    // The backlog is what starves: 20,000 received, not yet checked. Real decode and reducer, fake time.
    let now = 0;
    let s = emptyFleet();
    const checked: string[] = [];
    const intake = new FleetIntake(
      (m) => {
        checked.push(m.topic);
        const r = reduce(s, m);
        s = r.state;
        return r.outcome.ok ? 'accepted' : 'rejected';
      },
      { clock: { monotonic: () => now }, defer: () => undefined },
    );
    const ev = (seq: number) =>
      eventFor('source.status', { source: 'devfs', status: { state: 'active' } }, seq, 1);
    const legit = (seq: number) => msg('replug/legit/event', ev(seq), { retained: false });
    intake.push(legit(1));
    intake.drainAll();
    now = 1500;
    intake.push(legit(2));
    intake.drainAll();
    const junk = JSON.stringify(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, i])));
    const N = 20_000;
    for (let i = 0; i < N; i++)
      intake.push(msg(i % 2 ? `replug/h-${i}/event` : 'replug/h/event', junk, { retained: false }));
    intake.push(legit(3));
    intake.drainAll();
    const before = checked.indexOf('replug/legit/event', 2) - 2;
    expect(before).toBe(0);
    expect(checked).toHaveLength(N + 3);
    expect(s.counters.rejected.schema).toBe(N);
    expect(s.agents.get(agentId(A, 'legit'))?.lastEvent?.seq).toBe(3);
  });
});
