import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventDraft } from '../../src/mqtt/payloads.js';
import { decodeLine } from '../../src/mqtt/queue/format.js';
import { DurableQueue, QUEUE_FILE } from '../../src/mqtt/queue.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import { FakeClock } from '../fakes/clock.js';
import { device } from './fixtures.js';

let dir: string;
let clock: FakeClock;
const open: DurableQueue[] = [];
const killed: DurableQueue[] = [];

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
  // What a kill leaves open: closed here without the clean close's final mark (the files are removed next).
  for (const q of killed.splice(0)) await q.close().catch(() => undefined);
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

describe('DurableQueue reading back its file (issue 10)', () => {
  function logCapture() {
    const lines: { level: number; msg: string; skipped?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    return { log, lines };
  }

  // Each of these broke start-up or delivery silently on the old queue.
  it('starts on a file with lines it cannot trust, keeps the good events, says so once, counts them', async () => {
    const good = (seq: number) => JSON.stringify({ ev: { ...draft(seq), seq, session: 1 } });
    const hostile = [
      '1',
      'null',
      '{"meta":null}',
      JSON.stringify({ ev: { ...draft(1), seq: 1e300, session: 1 } }),
      JSON.stringify({ ev: { ...draft(1), seq: 2 ** 53 - 1, session: 1 } }),
      JSON.stringify({ ev: { ...draft(1), seq: 'x', session: 1 } }),
      JSON.stringify({ ev: { ...draft(1), seq: -5, session: 1 } }),
      '{"ack":"2"}',
      '{"drop":-1}',
      '{"ev":{"type":"device.added"}}',
    ];
    writeFileSync(
      path.join(dir, QUEUE_FILE),
      `${[good(1), ...hostile, good(2), good(3)].join('\n')}\n{"ev":{"ty`,
    );
    const { log, lines: logged } = logCapture();
    const q = await DurableQueue.open({ dir, clock, log });
    open.push(q);
    expect(q.peek(0, 10).map((e) => e.seq)).toEqual([1, 2, 3]);
    for (const e of q.peek(0, 10)) expect(validatePayload('event', e)).toEqual({ ok: true });
    expect(q.stats()).toMatchObject({ depth: 3, skipped: hostile.length + 1 });
    expect(q.push(draft(4), 2).seq).toBe(4);
    const warnings = logged.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(
      /skipped 11 lines of the event queue file.*first: line 2, not a JSON object/,
    );
    await q.settled();
    expect(lines().every((l) => decodeLine(l).ok)).toBe(true); // rewritten without them
  });

  // 798 MB stopped the agent (ERR_STRING_TOO_LONG, V8's ~512 MiB string limit). A sparse 600 MiB run of
  // NUL bytes, which is also what ext4 can leave of unsynced data after a power cut, costs no disk.
  it('reads a file larger than the longest string as a stream, skipping an endless line', async () => {
    const file = path.join(dir, QUEUE_FILE);
    writeFileSync(file, '');
    truncateSync(file, 600 * 1024 * 1024);
    appendFileSync(file, `\n${JSON.stringify({ ev: { ...draft(1), seq: 41, session: 1 } })}\n`);
    const q = await openQueue();
    expect(q.peek(0, 10).map((e) => e.seq)).toEqual([41]);
    expect(q.corruptLines).toBe(1);
    await q.settled();
    expect(statSync(file).size).toBeLessThan(4096);
  });

  it('bounds the file by the capacity while nothing is acknowledged (an outage)', async () => {
    const q = await openQueue({ capacity: 50 });
    for (let i = 1; i <= 1000; i++) q.push(draft(i), 1);
    await q.settled();
    expect(q.stats()).toMatchObject({ depth: 50, dropped: 950 });
    expect(lines().length).toBeLessThanOrEqual(2 * 50 + 1);
    await q.close();
    const again = await openQueue({ capacity: 50 });
    expect(again.peek(0, 100).map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 951));
    expect(again.dropped).toBe(950);
  });
});

describe('DurableQueue seq after the file lost data (issue 10)', () => {
  /** A queue that delivered 1..30 (sent and acked) and then the process died: no close. */
  async function deliveredThenKilled(): Promise<void> {
    const q = await DurableQueue.open({ dir, clock });
    for (let i = 1; i <= 30; i++) q.push(draft(i), 1);
    for (const ev of q.take(30)) q.ack(ev.seq);
    await q.settled();
    // The killed process's fd goes with it; its timers never fire.
    killed.push(q);
  }

  it.each([
    ['a torn last event line', (text: string) => text.slice(0, text.lastIndexOf('{"ev":') + 40)],
    ['the file cut in half', (text: string) => text.slice(0, Math.floor(text.length / 2))],
    [
      'everything after the first line lost (a power cut before any sync)',
      (text: string) => text.split('\n')[0] ?? '',
    ],
    ['the file gone', () => ''],
  ])('hands out no seq that was delivered after %s', async (_name, damage) => {
    await deliveredThenKilled();
    const file = path.join(dir, QUEUE_FILE);
    writeFileSync(file, damage(readFileSync(file, 'utf8')));
    const again = await openQueue();
    expect(again.push(draft(31), 2).seq).toBeGreaterThan(30);
  });
});
