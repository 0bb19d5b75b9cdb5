/**
 * Idle collection (issue 17, footprint: RSS after 10,000 replug cycles within 10 % of the RSS after 100).
 *
 * What a replug storm leaves behind is garbage the old generation promoted: a plug's state outlives two
 * scavenges (it lives through the settle window), so it is promoted and waits for a full collection. Once
 * the storm is over the agent allocates so little that V8 never runs one, and V8's memory reducer does
 * not start either (its trigger wants the committed heap to have grown about 10 MB since its last run),
 * so RSS kept what the old generation held when the storm ended: 0-11 MB more than before it, a different
 * figure every run. A browser tells V8 when a tab goes idle; Node tells it nothing. So the agent does the
 * reducer's job itself, and only when there is something to give back:
 *
 * - every second it reads its CPU time (all threads) and V8's physical heap size;
 * - a second with more than 20 ms of CPU is busy; the seconds after it are quiet;
 * - on the 1st and the 6th quiet second, if the heap holds more than 2 MiB over the least it has held
 *   when quiet, it runs full collections: two at once on the 1st (the first frees, the second gives the
 *   freed pages back; measured: one alone often returned nothing), one on the 6th (V8 shrinks the young
 *   generation at a full collection only once the recent allocation rate is low, and its rate window is
 *   5 s long);
 * - after a quiet period that collected, what is left becomes the new least, so a heap that grew for
 *   good (more targets, a broker with more retained messages) is not collected again and again.
 *
 * Cost: a full collection of this heap takes 7-20 ms here, and it runs after a burst of activity only.
 * `REPLUG_IDLE_GC=off` turns it off.
 */
import type { Clock } from '../util/clock.js';

export interface IdleGcOptions {
  /** More CPU than this in one tick (ms) makes the tick busy. */
  busyCpuMs: number;
  /** Collect only when the heap holds more than this over the quiet floor (bytes). */
  slackBytes: number;
  /** The quiet ticks to collect on, and how many collections each: [tick, count]. */
  collectAt: readonly (readonly [tick: number, count: number])[];
}

export const IDLE_GC_TICK_MS = 1000;
export const IDLE_GC_DEFAULTS: IdleGcOptions = {
  busyCpuMs: 20,
  slackBytes: 2 * 1024 * 1024,
  collectAt: [
    [1, 2],
    [6, 1],
  ],
};

/** The policy, pure: a tick's CPU time and the heap's physical size in; how many full collections out. */
export class IdleGcPolicy {
  readonly #opts: IdleGcOptions;
  readonly #lastTick: number;
  #floor = Number.POSITIVE_INFINITY;
  #quiet = 0;
  #collected = false;

  constructor(opts: IdleGcOptions = IDLE_GC_DEFAULTS) {
    this.#opts = opts;
    this.#lastTick = Math.max(0, ...opts.collectAt.map(([tick]) => tick));
  }

  /** The least physical heap size seen when quiet (after a quiet period that collected: what was left). */
  get floor(): number {
    return this.#floor;
  }

  tick(cpuMs: number, physicalBytes: number): number {
    if (cpuMs > this.#opts.busyCpuMs) {
      this.#quiet = 0;
      this.#collected = false;
      return 0;
    }
    this.#quiet++;
    if (this.#quiet === this.#lastTick + 1 && this.#collected) {
      this.#floor = physicalBytes;
      return 0;
    }
    this.#floor = Math.min(this.#floor, physicalBytes);
    const at = this.#opts.collectAt.find(([tick]) => tick === this.#quiet);
    if (!at || physicalBytes <= this.#floor + this.#opts.slackBytes) return 0;
    this.#collected = true;
    return at[1];
  }
}

export interface IdleGcDeps {
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** CPU time of the whole process so far, ms (user + system). */
  cpuMs: () => number;
  /** V8's physical heap size, bytes. */
  heapPhysical: () => number;
  /** Runs `count` full collections. */
  collect: (count: number) => Promise<void> | void;
  options?: IdleGcOptions;
}

/** Ticks the policy every second until stopped; the timer never keeps the process alive. */
export function startIdleGc(deps: IdleGcDeps): () => void {
  const policy = new IdleGcPolicy(deps.options);
  let before = deps.cpuMs();
  let stopped = false;
  let timer = schedule();

  function schedule() {
    const t = deps.clock.setTimeout(() => void tick(), IDLE_GC_TICK_MS);
    (t as { unref?: () => void }).unref?.();
    return t;
  }
  async function tick() {
    const now = deps.cpuMs();
    const count = policy.tick(now - before, deps.heapPhysical());
    if (count > 0) await deps.collect(count);
    // The collections' own CPU is not activity: the next tick counts from here.
    before = count > 0 ? deps.cpuMs() : now;
    if (!stopped) timer = schedule();
  }
  return () => {
    stopped = true;
    deps.clock.clearTimeout(timer);
  };
}

/** Whether this invocation collects when idle: the agent only, unless REPLUG_IDLE_GC=off. */
export function collectsWhenIdle(argv: readonly string[], env: Record<string, string | undefined>): boolean {
  if (argv[0] !== 'agent') return false;
  return !/^(off|0|false|no)$/i.test(env.REPLUG_IDLE_GC?.trim() ?? '');
}

/**
 * Full collections through V8's gc extension. Node exposes no way to ask for one without `--expose-gc`,
 * so the flag is set for a moment and a fresh context (which gets `gc` installed) lends its function:
 * called with no argument it is a full, synchronous mark-compact (V8 11 reads `{type: 'major'}` as a
 * young-generation scavenge). The context is garbage once this returns. node:vm loads on first use.
 */
export function fullCollector(setFlags: (flags: string) => void): (count: number) => Promise<void> {
  return async (count) => {
    const own = (globalThis as { gc?: () => void }).gc;
    let gc = own;
    if (!gc) {
      const { runInNewContext } = await import('node:vm');
      setFlags('--expose-gc');
      try {
        gc = runInNewContext('gc') as () => void;
      } finally {
        setFlags('--no-expose-gc');
      }
    }
    for (let i = 0; i < count; i++) gc();
  };
}
