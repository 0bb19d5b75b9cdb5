/**
 * What the durable queue promises about crashes (docs/topics.md "The durable queue on disk"), checked at
 * every step: one workload (pushes, sends, PUBACKs, compactions, seq mark reservations, periodic syncs) on
 * a disk that models page cache versus device (fake-disk.ts), with the power cut just before its n-th disk
 * operation for every n, and the process killed after every step. After each, a restarted queue must
 * - hand out no seq that was sent to the broker (the seq mark), and
 * - hold every event that was queued before the last completed periodic sync and not acknowledged
 *   (power cut), or every event queued and not acknowledged (kill).
 */
import { describe, expect, it } from 'vitest';
import { eventDraft } from '../../../src/mqtt/payloads.js';
import { DurableQueue } from '../../../src/mqtt/queue.js';
import { FakeClock } from '../../fakes/clock.js';
import { device } from '../fixtures.js';
import { FakeDisk } from './fake-disk.js';

const DIR = '/state';
const STEPS = 24;

interface Outcome {
  sent: Set<number>;
  /** Queued before the last completed sync, not acknowledged or dropped at the bound since. */
  mustSurviveCut: Set<number>;
  /** Queued and not acknowledged at the end. */
  pending: Set<number>;
}

const options = (disk: FakeDisk, clock: FakeClock) => ({
  dir: DIR,
  clock,
  disk,
  capacity: 40,
  compactSlack: 15,
  fsyncIntervalMs: 100,
  markBlock: 20,
});

/** Events the queue dropped at the bound are no longer owed. */
function forgetDropped(q: DurableQueue, out: Outcome): void {
  for (const seq of [...out.pending]) {
    if (q.has(seq)) continue;
    out.pending.delete(seq);
    out.mustSurviveCut.delete(seq);
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Each step pushes 5 events (30 every fifth step: a burst past the mark's half block), a turn of the
 * event loop after every other push so disk work runs in between (a rewrite's tail), sends 4 and acks
 * the two oldest sent; a sync every other step.
 */
async function workload(disk: FakeDisk, stopAfterStep = STEPS): Promise<Outcome> {
  const clock = new FakeClock();
  const out: Outcome = { sent: new Set(), mustSurviveCut: new Set(), pending: new Set() };
  let q: DurableQueue;
  try {
    q = await DurableQueue.open(options(disk, clock));
  } catch {
    return out; // the power went before the queue could even read its file: nothing happened
  }
  if (disk.frozen) return out;
  const inFlight: number[] = [];
  let attempt = 0;
  for (let step = 0; step < stopAfterStep; step++) {
    const n = step % 5 === 4 ? 30 : 5;
    for (let i = 0; i < n && !disk.frozen; i++) {
      const draft = eventDraft(
        'reconnect.attempt',
        { target: '1209:0001', attempt: ++attempt, device },
        clock.now(),
      );
      const ev = q.push(draft, 1);
      if (!disk.frozen) out.pending.add(ev.seq);
      if (i % 2 === 1) await turn();
    }
    forgetDropped(q, out);
    // After the power cut the process is dead: nothing it would have done from then on happened.
    if (disk.frozen) break;
    for (const ev of q.take(4)) {
      out.sent.add(ev.seq);
      inFlight.push(ev.seq);
    }
    for (const seq of inFlight.splice(0, 2)) {
      q.ack(seq);
      out.pending.delete(seq);
      out.mustSurviveCut.delete(seq);
    }
    if (step % 2 === 1) {
      await clock.advance(100);
      await q.settled();
      // A sync that completed with the power on: everything pending now is on the device.
      if (!disk.frozen) out.mustSurviveCut = new Set(out.pending);
    }
    await turn();
  }
  await q.settled();
  return out;
}

async function restart(disk: FakeDisk): Promise<DurableQueue> {
  return DurableQueue.open(options(disk, new FakeClock()));
}

describe('durable queue crash guarantees', () => {
  it('a power cut before any disk operation loses nothing synced and reuses no sent seq', async () => {
    const probe = new FakeDisk();
    await workload(probe);
    const total = probe.ops;
    expect(total).toBeGreaterThan(100);
    let cuts = 0;
    for (let n = 1; n <= total; n++) {
      const disk = new FakeDisk();
      disk.freezeAt(n);
      const out = await workload(disk);
      const q = await restart(disk.afterPowerCut());
      const maxSent = Math.max(0, ...out.sent);
      const pending = new Set(q.peek(0, 10_000).map((e) => e.seq));
      const lost = [...out.mustSurviveCut].filter((seq) => !pending.has(seq));
      expect(
        lost,
        `power cut before op ${n} (${disk.trace.slice(-12).join(', ')}): synced events lost`,
      ).toEqual([]);
      expect(q.seq, `power cut before op ${n}: next seq`).toBeGreaterThanOrEqual(maxSent);
      expect(q.corruptLines, `power cut before op ${n}`).toBe(0);
      await q.close();
      cuts++;
    }
    expect(cuts).toBe(total);
  });

  it('a process killed before any disk operation loses no queued event and reuses no sent seq', async () => {
    const probe = new FakeDisk();
    await workload(probe);
    for (let n = 1; n <= probe.ops; n++) {
      const disk = new FakeDisk();
      disk.freezeAt(n);
      const out = await workload(disk);
      const q = await restart(disk.afterKill());
      const pending = new Set(q.peek(0, 10_000).map((e) => e.seq));
      const lost = [...out.pending].filter((seq) => !pending.has(seq));
      expect(lost, `kill before op ${n} (${disk.trace.slice(-8).join(', ')})`).toEqual([]);
      expect(q.seq, `kill before op ${n}: next seq`).toBeGreaterThanOrEqual(Math.max(0, ...out.sent));
      await q.close();
    }
  });

  it('a clean close leaves no jump in seq; a crash jumps to the next reserved block', async () => {
    const disk = new FakeDisk();
    const clock = new FakeClock();
    const q = await DurableQueue.open(options(disk, clock));
    for (let i = 0; i < 7; i++)
      q.push(eventDraft('device.added', { device, source: 'devfs' }, clock.now()), 1);
    await q.settled();
    const crashed = await restart(disk.afterKill());
    expect(crashed.seq).toBe(40); // reserved ahead (blocks of 20): seqs up to 40 may have been sent
    await crashed.close();
    await q.close();
    const clean = await restart(disk.afterPowerCut());
    expect(clean.seq).toBe(7);
    await clean.close();
  });
});
