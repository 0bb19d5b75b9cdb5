import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventDraft } from '../../src/mqtt/payloads.js';
import { DurableQueue, QUEUE_FILE } from '../../src/mqtt/queue.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import { FakeClock } from '../fakes/clock.js';
import { device } from './fixtures.js';

let dir: string;
let clock: FakeClock;
const open: DurableQueue[] = [];

async function openQueue(options: { capacity?: number; compactSlack?: number } = {}): Promise<DurableQueue> {
  const q = await DurableQueue.open({ dir, clock, ...options });
  open.push(q);
  return q;
}

function draft(attempt: number) {
  return eventDraft('reconnect.attempt', { target: '1209:0001', attempt, device }, clock.now());
}

function lines(): string[] {
  return readFileSync(path.join(dir, QUEUE_FILE), 'utf8').split('\n').filter(Boolean);
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'replug-queue-'));
  clock = new FakeClock();
});

afterEach(async () => {
  for (const q of open.splice(0)) await q.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DurableQueue', () => {
  it('stamps schema-valid events with consecutive seqs and keeps them in order until acked', async () => {
    const q = await openQueue();
    const a = q.push(draft(1), 3);
    const b = q.push(draft(2), 3);
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(validatePayload('event', a)).toEqual({ ok: true });
    expect(q.peek(0, 10).map((e) => e.seq)).toEqual([1, 2]);
    expect(q.peek(1, 10).map((e) => e.seq)).toEqual([2]);
    q.ack(2);
    expect(q.peek(0, 10).map((e) => e.seq)).toEqual([1]);
    q.ack(1);
    q.ack(1);
    expect(q.stats()).toMatchObject({ depth: 0, dropped: 0, capacity: 10_000 });
  });

  it('drops the oldest at the bound and counts them', async () => {
    const q = await openQueue({ capacity: 3 });
    for (let i = 1; i <= 5; i++) q.push(draft(i), 1);
    expect(q.peek(0, 10).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(q.stats()).toMatchObject({ depth: 3, dropped: 2, capacity: 3 });
    q.ack(1); // a late PUBACK for a dropped event changes nothing
    expect(q.depth).toBe(3);
  });

  it('survives a re-open: pending events, dropped count and seq continue', async () => {
    const q = await openQueue({ capacity: 3 });
    for (let i = 1; i <= 5; i++) q.push(draft(i), 1);
    q.ack(3);
    await q.close();
    const again = await openQueue({ capacity: 3 });
    expect(again.peek(0, 10).map((e) => [e.seq, e.session])).toEqual([
      [4, 1],
      [5, 1],
    ]);
    expect(again.dropped).toBe(2);
    expect(again.push(draft(6), 2).seq).toBe(6);
  });

  it('continues seq after everything was acked and compacted away', async () => {
    const q = await openQueue({ compactSlack: 2 });
    for (let i = 1; i <= 4; i++) q.ack(q.push(draft(i), 1).seq);
    await q.settled();
    expect(lines().length).toBeLessThanOrEqual(4);
    await q.close();
    const again = await openQueue({ compactSlack: 2 });
    expect(again.depth).toBe(0);
    expect(again.push(draft(5), 2).seq).toBe(5);
  });

  it('tolerates a torn last line (crash mid-write) and compacts it away', async () => {
    const q = await openQueue();
    q.push(draft(1), 1);
    q.push(draft(2), 1);
    await q.close();
    appendFileSync(path.join(dir, QUEUE_FILE), '{"ev":{"type":"reconn');
    const again = await openQueue();
    expect(again.corruptLines).toBe(1);
    expect(again.peek(0, 10).map((e) => e.seq)).toEqual([1, 2]);
    expect(lines().every((l) => JSON.parse(l))).toBe(true);
    expect(again.push(draft(3), 2).seq).toBe(3);
  });

  it('applies a lowered bound on re-open', async () => {
    const q = await openQueue({ capacity: 10 });
    for (let i = 1; i <= 6; i++) q.push(draft(i), 1);
    await q.close();
    const again = await openQueue({ capacity: 4 });
    expect(again.peek(0, 10).map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(again.dropped).toBe(2);
  });

  it('compacts so the file stays near the pending size', async () => {
    const q = await openQueue({ compactSlack: 10 });
    for (let i = 1; i <= 100; i++) q.ack(q.push(draft(i), 1).seq);
    q.push(draft(101), 1);
    await q.settled();
    expect(lines().length).toBeLessThanOrEqual(1 + 1 + 10 + 2);
  });

  it('notifies push listeners until unsubscribed, and fsyncs on the injected clock', async () => {
    const q = await openQueue();
    let calls = 0;
    const off = q.onPush(() => calls++);
    q.push(draft(1), 1);
    off();
    q.push(draft(2), 1);
    expect(calls).toBe(1);
    expect(clock.pendingCount).toBe(1);
    await clock.advance(1000);
    expect(clock.pendingCount).toBe(0);
  });

  it('reports an unusable state dir as REPLUG_STATE_DIR', async () => {
    const file = path.join(dir, 'not-a-dir');
    appendFileSync(file, 'x');
    await expect(DurableQueue.open({ dir: file, clock })).rejects.toThrow(
      expect.objectContaining({ code: 'REPLUG_STATE_DIR' }),
    );
  });
});
