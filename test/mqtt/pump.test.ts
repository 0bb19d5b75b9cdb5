import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EventPayload, eventDraft } from '../../src/mqtt/payloads.js';
import { EventPump } from '../../src/mqtt/pump.js';
import { DurableQueue } from '../../src/mqtt/queue.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeClock } from '../fakes/clock.js';
import { device } from './fixtures.js';
import { record, startAedes } from './helpers.js';

let dir: string;
let clock: FakeClock;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'replug-pump-'));
  clock = new FakeClock();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function openQueue(
  capacity?: number,
  c: FakeClock | typeof systemClock = clock,
): Promise<DurableQueue> {
  const q = await DurableQueue.open({ dir, clock: c, ...(capacity ? { capacity } : {}) });
  cleanups.push(() => q.close());
  return q;
}

let attempt = 0;
function push(q: DurableQueue, n: number): void {
  for (let i = 0; i < n; i++)
    q.push(
      eventDraft('reconnect.attempt', { target: '1209:0001', attempt: ++attempt, device }, clock.now()),
      1,
    );
}

/** A send whose every publish waits until the test settles it. */
function manualSend() {
  const calls: { seq: number; resolve(): void; reject(err: unknown): void }[] = [];
  const send = (ev: EventPayload) =>
    new Promise<unknown>((resolve, reject) =>
      calls.push({ seq: ev.seq, resolve: () => resolve(undefined), reject }),
    );
  return { calls, send, seqs: () => calls.map((c) => c.seq) };
}

function wire(q: DurableQueue, pump: EventPump): void {
  const off = q.onPush(() => pump.pump());
  cleanups.push(() => {
    off();
    pump.reset();
  });
}

describe('EventPump', () => {
  it('keeps at most `window` in flight and acks in the queue on PUBACK', async () => {
    const q = await openQueue();
    const pump = new EventPump(q, clock, 4, () => undefined);
    wire(q, pump);
    const s = manualSend();
    pump.resume(s.send);
    push(q, 10);
    expect(s.seqs()).toEqual([1, 2, 3, 4]);
    s.calls[0]?.resolve();
    await clock.flush();
    expect(s.seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(q.depth).toBe(9);
    expect(pump.inFlight).toBe(4);
  });

  // Issue 12: a throw in the negative-PUBACK path skipped done(): one in-flight slot lost each time.
  it('loses no slot when the refused-event callback throws', async () => {
    const q = await openQueue();
    let refusedCalls = 0;
    const pump = new EventPump(q, clock, 2, () => {
      refusedCalls++;
      throw new Error("emit('error') with no listener");
    });
    wire(q, pump);
    pump.resume(() =>
      Promise.reject(Object.assign(new Error('Publish error: Not authorized'), { code: 0x87 })),
    );
    push(q, 5);
    for (let i = 0; i < 5; i++) await clock.flush();
    expect(refusedCalls).toBe(5);
    expect(q.depth).toBe(0);
    expect(pump.inFlight).toBe(0);
    expect(q.stats()).toMatchObject({ refused: 5, dropped: 0 });
  });

  it('loses no slot when send throws synchronously', async () => {
    const q = await openQueue();
    const pump = new EventPump(q, clock, 2, () => undefined, { retryMs: 100 });
    wire(q, pump);
    let fail = true;
    const sent: number[] = [];
    pump.resume((ev) => {
      if (fail) throw new Error('client gone');
      sent.push(ev.seq);
      return Promise.resolve();
    });
    push(q, 3);
    await clock.flush();
    expect(pump.inFlight).toBe(0);
    fail = false;
    await clock.advance(100);
    expect(sent).toEqual([1, 2, 3]);
    expect(q.depth).toBe(0);
  });

  // Issue 12: `cursor = 0` after one failed publish re-sent every event still in flight.
  it('re-sends only the publish the client dropped, never one still in flight', async () => {
    const q = await openQueue();
    const pump = new EventPump(q, clock, 4, () => undefined, { retryMs: 500 });
    wire(q, pump);
    const s = manualSend();
    pump.resume(s.send);
    push(q, 6);
    expect(s.seqs()).toEqual([1, 2, 3, 4]);
    s.calls[1]?.reject(new Error('Connection closed'));
    await clock.flush();
    expect(s.seqs()).toEqual([1, 2, 3, 4]); // held: no hot loop, no duplicate
    await clock.advance(500);
    expect(s.seqs()).toEqual([1, 2, 3, 4, 2]);
    for (const c of s.calls) c.resolve();
    await clock.flush();
    expect(s.seqs().filter((seq) => seq !== 2)).toEqual([1, 3, 4, 5, 6]);
    for (const c of s.calls) c.resolve();
    await clock.flush();
    expect(q.depth).toBe(0);
  });

  it('a publish that keeps failing is retried at retryMs, not in a loop', async () => {
    const q = await openQueue();
    const pump = new EventPump(q, clock, 4, () => undefined, { retryMs: 1000 });
    wire(q, pump);
    let sends = 0;
    pump.resume(() => {
      sends++;
      return Promise.reject(new Error('Connection closed'));
    });
    push(q, 1);
    await clock.advance(5000);
    expect(sends).toBeLessThanOrEqual(6);
    expect(q.depth).toBe(1);
  });

  it('pause keeps in flight with the client; resume sends only what waits; reset re-sends from the first unacked', async () => {
    const q = await openQueue();
    const pump = new EventPump(q, clock, 3, () => undefined);
    wire(q, pump);
    const a = manualSend();
    pump.resume(a.send);
    push(q, 5);
    pump.pause();
    a.calls[0]?.resolve(); // the replayed PUBLISH is acked while reconnecting
    await clock.flush();
    const b = manualSend();
    pump.resume(b.send);
    expect(b.seqs()).toEqual([4]); // 2 and 3 are still with the client (MQTT.js replays them)
    pump.reset(); // the client is gone: its publishes with it
    const c = manualSend();
    pump.resume(c.send);
    expect(c.seqs()).toEqual([2, 3, 4]);
    for (const x of [...a.calls, ...b.calls]) x.resolve(); // late callbacks of the old client change nothing
    await clock.flush();
    expect(pump.inFlight).toBe(3);
  });

  // Issue 10: health.queue.dropped over-counted (3,893 for a real gap of 3,890): events dropped at the
  // bound while in flight were delivered anyway from MQTT.js's outgoing store.
  it('counts as dropped only events that will never be delivered', async () => {
    const q = await openQueue(20);
    const pump = new EventPump(q, clock, 4, () => undefined);
    wire(q, pump);
    const s = manualSend();
    pump.resume(s.send);
    push(q, 4); // in flight when the connection drops
    pump.pause();
    push(q, 30); // the outage: 34 events for a bound of 20
    for (const c of s.calls) c.resolve(); // MQTT.js replays the 4 on reconnect: delivered
    await clock.flush();
    const delivered = new Set(s.seqs());
    const t = manualSend();
    pump.resume(t.send);
    for (let i = 0; i < 10; i++) {
      for (const c of t.calls.splice(0)) {
        delivered.add(c.seq);
        c.resolve();
      }
      await clock.flush();
    }
    expect(q.depth).toBe(0);
    const gap = 34 - delivered.size;
    expect(q.dropped).toBe(gap);
  });
});

describe('EventPump with MQTT.js and Aedes', () => {
  it('loses nothing and sends each event once when the connection drops with events in flight', async () => {
    let holdAcks = true;
    const held: (() => void)[] = [];
    const aedes = await startAedes({
      // PUBACKs wait while holdAcks: events are in flight when the connection goes.
      authorizePublish: (client, _packet, done) => {
        if (holdAcks && client?.id === 'pump-test') held.push(() => done(null));
        else done(null);
      },
    });
    cleanups.push(() => aedes.close());
    const r = await record(aedes.url, 'replug/pump/event');
    cleanups.push(() => r.close());
    const q = await openQueue(undefined, systemClock);
    const client = mqtt.connect(aedes.url, { clientId: 'pump-test', reconnectPeriod: 100, clean: true });
    cleanups.push(() => client.endAsync(true));
    const pump = new EventPump(q, systemClock, 8, () => undefined);
    wire(q, pump);
    const sent = new Map<number, number>();
    const send = (ev: EventPayload) => {
      sent.set(ev.seq, (sent.get(ev.seq) ?? 0) + 1);
      return client.publishAsync('replug/pump/event', JSON.stringify(ev), { qos: 1 });
    };
    client.on('connect', () => pump.resume(send));
    client.on('close', () => pump.pause());
    await new Promise((res) => client.once('connect', res));
    push(q, 20);
    await new Promise((res) => setTimeout(res, 100));
    expect(pump.inFlight).toBe(8);
    holdAcks = false;
    client.stream.destroy(); // connection lost with 8 PUBLISHes awaiting PUBACK
    held.length = 0;
    await r.until((m) => new Set(m.map((x) => x.json.seq)).size >= 20, 10_000, 'all 20 events');
    await new Promise((res) => setTimeout(res, 100));
    expect(q.depth).toBe(0);
    expect([...sent.values()].every((n) => n === 1)).toBe(true);
    const firsts: number[] = [];
    for (const m of r.messages) if (!firsts.includes(m.json.seq as number)) firsts.push(m.json.seq as number);
    expect(firsts).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
