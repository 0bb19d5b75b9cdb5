import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import {
  collectsWhenIdle,
  fullCollector,
  IDLE_GC_DEFAULTS,
  IDLE_GC_TICK_MS,
  IdleGcPolicy,
  startIdleGc,
} from '../../src/bin/idle-gc.js';
import type { TimerHandle } from '../../src/util/clock.js';

const MiB = 1024 * 1024;
const BUSY = IDLE_GC_DEFAULTS.busyCpuMs + 1;

describe('IdleGcPolicy', () => {
  it('collects twice on the first quiet second and once on the sixth when the heap grew past the slack', () => {
    const p = new IdleGcPolicy();
    expect(p.tick(0, 8 * MiB)).toBe(0); // quiet at start: the floor is 8 MiB
    for (let i = 0; i < 10; i++) expect(p.tick(BUSY, 20 * MiB)).toBe(0); // a storm: never during it
    const after = [1, 2, 3, 4, 5, 6].map(() => p.tick(0, 19 * MiB));
    expect(after).toEqual([2, 0, 0, 0, 0, 1]);
  });

  it('does not collect for growth within the slack, and the floor does not creep up without a collection', () => {
    const p = new IdleGcPolicy();
    p.tick(0, 8 * MiB);
    for (let round = 0; round < 5; round++) {
      p.tick(BUSY, 9 * MiB);
      for (let i = 0; i < 10; i++) expect(p.tick(0, 9.9 * MiB)).toBe(0);
    }
    expect(p.floor).toBe(8 * MiB);
    p.tick(BUSY, 11 * MiB);
    expect(p.tick(0, 10.5 * MiB)).toBe(2); // 2.5 MiB over 8: collects
  });

  it('after a quiet period that collected, what is left is the floor: a heap that grew for good is left alone', () => {
    const p = new IdleGcPolicy();
    p.tick(0, 8 * MiB);
    p.tick(BUSY, 30 * MiB);
    expect(p.tick(0, 30 * MiB)).toBe(2);
    for (let i = 2; i <= 6; i++) p.tick(0, 24 * MiB); // the live set is 24 MiB now
    p.tick(0, 24 * MiB); // the 7th quiet second: the new floor
    expect(p.floor).toBe(24 * MiB);
    p.tick(BUSY, 25 * MiB);
    expect([1, 2, 3, 4, 5, 6].map(() => p.tick(0, 25 * MiB))).toEqual([0, 0, 0, 0, 0, 0]);
    p.tick(BUSY, 27 * MiB);
    expect(p.tick(0, 27 * MiB)).toBe(2); // more than the slack over the new floor: collects again
  });

  it('a busy second in the middle starts the quiet count again', () => {
    const p = new IdleGcPolicy();
    p.tick(0, 8 * MiB);
    p.tick(BUSY, 20 * MiB);
    expect(p.tick(0, 20 * MiB)).toBe(2);
    expect(p.tick(0, 20 * MiB)).toBe(0);
    p.tick(BUSY, 20 * MiB);
    expect(p.tick(0, 20 * MiB)).toBe(2);
  });
});

/** A clock whose timers run when advanced. */
function fakeClock() {
  let now = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 0;
  return {
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const id = ++next;
      timers.set(id, { at: now + ms, fn });
      return { id };
    },
    clearTimeout(h: TimerHandle) {
      timers.delete((h as { id: number }).id);
    },
    pending: () => timers.size,
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
  };
}

describe('startIdleGc', () => {
  it('ticks every second, collects after a burst, and does not count its own collections as activity', async () => {
    const clock = fakeClock();
    let cpu = 0;
    let heap = 8 * MiB;
    const collections: number[] = [];
    const stop = startIdleGc({
      clock,
      cpuMs: () => cpu,
      heapPhysical: () => heap,
      collect: (n) => {
        collections.push(n);
        cpu += 500; // a slow collection: more than a busy second's worth (the heap stays as it was)
      },
    });
    await clock.advance(IDLE_GC_TICK_MS); // quiet: floor 8 MiB
    cpu += 300;
    heap = 20 * MiB;
    await clock.advance(IDLE_GC_TICK_MS); // busy
    await clock.advance(IDLE_GC_TICK_MS); // quiet 1: collects twice
    expect(collections).toEqual([2]);
    await clock.advance(10 * IDLE_GC_TICK_MS);
    // Quiet 6 collects once more. Had the 500 ms been counted, the tick after the collection would have
    // been busy, and the one after that a first quiet second again: [2, 2, 1].
    expect(collections).toEqual([2, 1]);
    stop();
    expect(clock.pending()).toBe(0);
  });
});

describe('collectsWhenIdle', () => {
  it('the agent only, and REPLUG_IDLE_GC=off turns it off', () => {
    expect(collectsWhenIdle(['agent', '--id', 'x'], {})).toBe(true);
    expect(collectsWhenIdle(['watch'], {})).toBe(false);
    expect(collectsWhenIdle([], {})).toBe(false);
    for (const off of ['off', '0', 'false', 'no', ' OFF ']) {
      expect(collectsWhenIdle(['agent'], { REPLUG_IDLE_GC: off })).toBe(false);
    }
    expect(collectsWhenIdle(['agent'], { REPLUG_IDLE_GC: 'on' })).toBe(true);
  });
});

describe('fullCollector', () => {
  it('runs full mark-compact collections (not scavenges) without --expose-gc on the command line', async () => {
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    const kinds: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        kinds.push((e as unknown as { detail: { kind: number } }).detail.kind);
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      await fullCollector(setFlagsFromString)(2);
      await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
    } finally {
      obs.disconnect();
    }
    const major = kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MAJOR).length;
    expect(major).toBeGreaterThanOrEqual(2);
    // The flag was set for a moment only: contexts made from now on have no gc.
    const { runInNewContext } = await import('node:vm');
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
