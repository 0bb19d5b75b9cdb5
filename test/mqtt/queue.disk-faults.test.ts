/**
 * The durable queue under real disk faults (issue 10): a 64 KiB tmpfs the queue fills by itself, a disk
 * filled by something else, an immutable queue file, an immutable (read-only) state dir, the state dir
 * removed while running. Real filesystems, a real Aedes on port 0 and a real MQTT.js client, the queue and
 * the pump as the publisher wires them. Every run must keep delivering everything already queued, say so
 * once, count it, and recover when the disk does.
 *
 * Needs root (mount, chattr); without it the suite is skipped with a loud message, except under CI=true
 * where that is a failure. The unprivileged `chmod a-w` variant is in queue.readonly-dir.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventDraft } from '../../src/mqtt/payloads.js';
import { EventPump } from '../../src/mqtt/pump.js';
import { LineSplitter } from '../../src/mqtt/queue/lines.js';
import { Replay } from '../../src/mqtt/queue/replay.js';
import { DurableQueue, QUEUE_FILE } from '../../src/mqtt/queue.js';
import { systemClock } from '../../src/util/clock.js';
import { device } from './fixtures.js';
import { type AedesHandle, type Recorder, record, startAedes } from './helpers.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  const why = 'test/mqtt/queue.disk-faults.test.ts needs root (tmpfs mounts, chattr)';
  if (process.env.CI === 'true') throw new Error(`${why}; CI runs as root`);
  console.warn(`\n*** SKIPPED: ${why} ***\n`);
}

const TOPIC = 'replug/qtest/event';
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' });

interface Rig {
  dir: string;
  queue: DurableQueue;
  client: MqttClient;
  pump: EventPump;
  logs: { level: number; msg: string; module?: string }[];
  push(n: number): void;
}

let aedes: AedesHandle;
let base: string;
let recorder: Recorder;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
const rejections: unknown[] = [];
const onRejection = (err: unknown) => rejections.push(err);
let attempt = 0;

beforeEach(async () => {
  aedes = await startAedes();
  base = mkdtempSync(path.join(os.tmpdir(), 'replug-queue-faults-'));
  recorder = await record(aedes.url, TOPIC);
  rejections.length = 0;
  process.on('unhandledRejection', onRejection);
});

afterEach(async () => {
  process.off('unhandledRejection', onRejection);
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  await recorder.close();
  await aedes.close();
  rmSync(base, { recursive: true, force: true });
});

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  sh('mount', '-t', 'tmpfs', '-o', `size=${size}`, 'replug-queue-test', dir);
  cleanups.push(() => sh('umount', '-l', dir));
}

/** Queue + pump wired as the publisher wires them, publishing to the test's Aedes. */
async function rig(dir: string): Promise<Rig> {
  const logs: Rig['logs'] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => logs.push(JSON.parse(l)) });
  const queue = await DurableQueue.open({ dir, clock: systemClock, retryMs: 200, fsyncIntervalMs: 50, log });
  const client = mqtt.connect(aedes.url, { protocolVersion: 5, reconnectPeriod: 100 });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const pump = new EventPump(queue, systemClock, 16, () => undefined, { log });
  const unsubscribe = queue.onPush(() => pump.pump());
  pump.resume((ev) => client.publishAsync(TOPIC, JSON.stringify(ev), { qos: 1 }));
  cleanups.push(async () => {
    unsubscribe();
    pump.reset();
    await client.endAsync(true);
    await queue.close();
  });
  return {
    dir,
    queue,
    client,
    pump,
    logs,
    push(n) {
      for (let i = 0; i < n; i++)
        queue.push(
          eventDraft('reconnect.attempt', { target: '1209:0001', attempt: ++attempt, device }, Date.now()),
          7,
        );
    },
  };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function delivered(): number[] {
  return recorder.messages.map((m) => m.json.seq as number);
}

/** The queue's own warnings: one per outage, never one per event. */
function queueWarnings(r: Rig) {
  return r.logs.filter((l) => l.level >= 40 && l.module === 'queue');
}

async function reopen(dir: string): Promise<DurableQueue> {
  const q = await DurableQueue.open({ dir, clock: systemClock });
  cleanups.push(() => q.close());
  return q;
}

/** What a restart would read from the file, without opening a second queue on it. */
function pendingOnDisk(dir: string): number[] {
  const replay = new Replay();
  const splitter = new LineSplitter();
  for (const piece of splitter.push(readFileSync(path.join(dir, QUEUE_FILE)))) replay.apply(piece);
  for (const piece of splitter.end()) replay.apply(piece);
  return replay.result().events.map((e) => e.seq);
}

describe.skipIf(!isRoot)('durable queue on a failing disk', () => {
  it('a 64 KiB tmpfs the queue fills itself: everything delivered in order, said once, recovered', async () => {
    const dir = path.join(base, 'state');
    mountTmpfs(dir, '64k');
    const r = await rig(dir);
    r.push(600); // ~210 KB of event lines: far beyond the disk
    await until('600 events delivered', () => delivered().length >= 600);
    expect(delivered()).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    await until('the file writable again once the queue drained', () => r.queue.stats().disk?.state === 'ok');
    const stats = r.queue.stats();
    expect(stats).toMatchObject({ depth: 0, disk: { state: 'ok', error: 'ENOSPC', unsaved: 0 } });
    expect(stats.disk?.failures).toBeGreaterThanOrEqual(1);
    const warnings = queueWarnings(r);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(
      /cannot write the event queue file .*ENOSPC.*delivering queued events from memory/,
    );
    expect(rejections).toEqual([]);
    await r.queue.close();
    const again = await reopen(dir);
    expect(again.depth).toBe(0);
    expect(again.seq).toBeGreaterThanOrEqual(600);
  });

  it('a disk filled by someone else: queued events wait in memory, and are saved once space is freed', async () => {
    const dir = path.join(base, 'state');
    mountTmpfs(dir, '1m');
    const r = await rig(dir);
    r.push(10);
    await until('warm-up delivered', () => delivered().length >= 10);
    r.pump.pause(); // broker away: what follows stays queued
    const filler = path.join(dir, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
    } catch {
      // ENOSPC: full now
    }
    r.push(200);
    await until('the failure noticed', () => r.queue.stats().disk?.state === 'failing');
    expect(r.queue.stats().disk?.unsaved).toBeGreaterThan(0);
    rmSync(filler);
    await until('the queue saved again', () => r.queue.stats().disk?.state === 'ok', 5000);
    expect(r.queue.stats().disk?.unsaved).toBe(0);
    await r.queue.settled();
    // What a restart would find: all 200 waiting, in order.
    expect(pendingOnDisk(dir)).toEqual(Array.from({ length: 200 }, (_, i) => i + 11));
    expect(queueWarnings(r)).toHaveLength(1);
    expect(rejections).toEqual([]);
  });

  it('an immutable queue file (chattr +i): delivery goes on, said once, recovered after chattr -i', async () => {
    const dir = path.join(base, 'state');
    mkdirSync(dir);
    const file = path.join(dir, QUEUE_FILE);
    cleanups.push(() => sh('chattr', '-i', file));
    const r = await rig(dir);
    r.push(20);
    await until('warm-up delivered', () => delivered().length >= 20);
    sh('chattr', '+i', file);
    r.push(500);
    await until('520 delivered', () => delivered().length >= 520);
    expect(delivered()).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
    expect(r.queue.stats()).toMatchObject({
      depth: 0,
      disk: { state: 'failing', error: 'EPERM', failures: 1 },
    });
    sh('chattr', '-i', file);
    await until('recovered', () => r.queue.stats().disk?.state === 'ok', 5000);
    expect(queueWarnings(r)).toHaveLength(1);
    expect(rejections).toEqual([]);
  });

  it('a read-only state dir (chattr +i on the dir: no temp file, no rename) does not stop delivery', async () => {
    const dir = path.join(base, 'state');
    mkdirSync(dir);
    cleanups.push(() => sh('chattr', '-i', dir));
    const r = await rig(dir);
    r.push(20);
    await until('warm-up delivered', () => delivered().length >= 20);
    sh('chattr', '+i', dir);
    // Past the compaction slack (1000 lines): the rewrite needs a temp file the dir refuses.
    for (let i = 0; i < 6; i++) {
      r.push(250);
      await until(`${20 + 250 * (i + 1)} delivered`, () => delivered().length >= 20 + 250 * (i + 1));
    }
    expect(delivered()).toEqual(Array.from({ length: 1520 }, (_, i) => i + 1));
    expect(rejections).toEqual([]); // the old queue's failed compaction threw inside the pump's callbacks
    expect(r.queue.stats().disk?.failures).toBeGreaterThanOrEqual(1);
    // Drained, the file is rewritten in place: bounded again although the dir stays read-only.
    await until('the file rewritten in place', () => r.queue.stats().disk?.state === 'ok', 5000);
    expect(r.queue.fileLines).toBeLessThan(1000);
    expect(queueWarnings(r)).toHaveLength(1);
    expect(rejections).toEqual([]);
  });

  it('the state dir removed while running (rm -rf): noticed, recreated, nothing queued lost', async () => {
    const dir = path.join(base, 'state');
    mkdirSync(dir);
    const r = await rig(dir);
    r.push(20);
    await until('warm-up delivered', () => delivered().length >= 20);
    r.pump.pause();
    rmSync(dir, { recursive: true, force: true });
    r.push(300);
    await until(
      'the queue file back',
      () => existsSync(path.join(dir, QUEUE_FILE)) && r.queue.stats().disk?.state === 'ok',
    );
    expect(r.queue.stats().disk).toMatchObject({ error: 'ENOENT', failures: 1, unsaved: 0 });
    await r.queue.settled();
    expect(pendingOnDisk(dir)).toEqual(Array.from({ length: 300 }, (_, i) => i + 21));
    r.pump.resume((ev) => r.client.publishAsync(TOPIC, JSON.stringify(ev), { qos: 1 }));
    await until('all delivered', () => delivered().length >= 320);
    expect(delivered()).toEqual(Array.from({ length: 320 }, (_, i) => i + 1));
    expect(queueWarnings(r)).toHaveLength(1);
    expect(rejections).toEqual([]);
  });
});
