import type { Clock, TimerHandle } from '../../src/util/clock.js';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A fake clock: timers fire only when the test advances time. `advance` flushes real promises between
 * timers so async code driven by the timers makes progress (habit 10).
 */
export class FakeClock implements Clock {
  private time: number;
  private mono = 0;
  private nextId = 1;
  private pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Pending = { id: this.nextId++, at: this.mono + Math.max(0, ms), fn };
    this.pending.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: number }).id;
    this.pending = this.pending.filter((p) => p.id !== id);
  }

  /** Number of timers still scheduled: a leak check for tests. */
  get pendingCount(): number {
    return this.pending.length;
  }

  async flush(): Promise<void> {
    for (let i = 0; i < 20; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  }

  /** Advance time by `ms`, firing due timers in order and flushing promises after each. */
  async advance(ms: number): Promise<void> {
    const target = this.mono + ms;
    await this.flush();
    for (;;) {
      this.pending.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.pending[0];
      if (!next || next.at > target) break;
      this.pending.shift();
      this.time += next.at - this.mono;
      this.mono = next.at;
      next.fn();
      await this.flush();
    }
    this.time += target - this.mono;
    this.mono = target;
    await this.flush();
  }
}
