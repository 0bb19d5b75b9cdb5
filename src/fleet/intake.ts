/**
 * Between the subscriber and the fleet store: per-source queues and a time-sliced, fair drain (issue 12).
 *
 * MQTT.js hands over messages in socket order, and checking one (parse, schema) costs far more than
 * receiving it. Checked in arrival order, a burst of 20,000 hostile payloads delayed the legitimate events
 * behind it by up to 5.3 s. Here a message is only queued on arrival (O(1)); the drain runs in slices of
 * `sliceMs`, yielding to I/O in between, and takes one message per source in turn, sources with a record
 * of good messages first. A source is an agent id on a broker (the topic's second level: the only identity
 * a subscriber has; MQTT does not say who published). A source earns "good" with messages the store
 * accepted over at least `trustAfterMs` (a flood of fresh ids, valid or not, never has that) and keeps it
 * while it had one accepted in the last `forgetAfterMs`; rejections alone never demote it, since garbage
 * published under a real agent's id would otherwise push that agent down with it. So neither fake ids nor
 * garbage can delay an agent that publishes valid payloads. One source's messages stay in their order: an
 * agent whose id is used for garbage waits behind that garbage, no one else does.
 *
 * Bounded: at most `maxQueued` messages and `maxBytes` of payload wait; past either, the newest message of
 * the longest queue of a source that is not good is dropped (counted, shown by the view), so memory stays
 * bounded whatever arrives.
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import type { FleetMessage } from './types.js';

export interface IntakeOptions {
  clock: Pick<Clock, 'monotonic'>;
  /** Work per turn before yielding to I/O; 8 ms by default. */
  sliceMs?: number;
  /** Of which at most this much for sources that are not good; 2 ms by default. */
  othersSliceMs?: number;
  maxQueued?: number;
  maxBytes?: number;
  /** A good source that had nothing accepted for this long is good no more; 10 000 ms by default. */
  forgetAfterMs?: number;
  /** A source is good once its accepted messages span this long; 1000 ms by default. */
  trustAfterMs?: number;
  /** How to yield between slices (setImmediate by default; tests pass their own). */
  defer?: (fn: () => void) => TimerHandle | undefined;
}

export interface IntakeStats {
  queued: number;
  queuedBytes: number;
  dropped: number;
  sources: number;
  goodSources: number;
}

interface Source {
  key: string;
  queue: FleetMessage[];
  head: number;
  good: boolean;
  /** When the store first and last accepted a message of this source (monotonic ms). */
  firstAccepted: number | undefined;
  lastAccepted: number;
  /** In a ring already. */
  scheduled: boolean;
}

/** A FIFO of sources with O(1) push and shift (Array.prototype.shift is O(n): 100,000 fake ids). */
class Ring {
  private items: (Source | undefined)[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(s: Source): void {
    this.items.push(s);
  }
  shift(): Source | undefined {
    if (this.head >= this.items.length) return undefined;
    const s = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return s;
  }
  *[Symbol.iterator](): IterableIterator<Source> {
    for (let i = this.head; i < this.items.length; i++) {
      const s = this.items[i];
      if (s) yield s;
    }
  }
}

/** What the store made of one message: the intake learns which sources are good from it. */
export type Verdict = 'accepted' | 'rejected';

/** Sources remembered; past it, idle ones never trusted are forgotten (100,000 fake ids). */
const MAX_SOURCES = 20_000;

/** `replug/<agent>/...` -> `<broker> <agent>`; anything else shares one source per broker. */
function sourceKey(m: FleetMessage): string {
  const t = m.topic;
  const a = t.indexOf('/');
  const b = a < 0 ? -1 : t.indexOf('/', a + 1);
  const agent = a < 0 || b < 0 ? '' : t.slice(a + 1, Math.min(b, a + 1 + 64));
  return `${m.broker} ${agent}`;
}

export class FleetIntake {
  private readonly sources = new Map<string, Source>();
  private readonly good = new Ring();
  private readonly others = new Ring();
  private queued = 0;
  private queuedBytes = 0;
  private dropped = 0;
  private draining = false;
  private readonly sliceMs: number;
  private readonly othersSliceMs: number;
  private readonly maxQueued: number;
  private readonly maxBytes: number;
  private readonly forgetAfterMs: number;
  private readonly trustAfterMs: number;
  private readonly defer: (fn: () => void) => unknown;
  private idleWaiters: (() => void)[] = [];
  private forgetAt = MAX_SOURCES;

  constructor(
    private readonly handle: (m: FleetMessage) => Verdict,
    private readonly options: IntakeOptions,
  ) {
    this.sliceMs = options.sliceMs ?? 8;
    this.othersSliceMs = options.othersSliceMs ?? 2;
    this.maxQueued = options.maxQueued ?? 100_000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.forgetAfterMs = options.forgetAfterMs ?? 10_000;
    this.trustAfterMs = options.trustAfterMs ?? 1000;
    this.defer = options.defer ?? ((fn) => setImmediate(fn));
  }

  push(m: FleetMessage): void {
    const key = sourceKey(m);
    let s = this.sources.get(key);
    if (!s) {
      if (this.sources.size >= this.forgetAt) {
        this.forgetIdle();
        // Amortised: the next pass waits until the map doubled (a flood keeps every source queued).
        this.forgetAt = Math.max(MAX_SOURCES, this.sources.size * 2);
      }
      s = {
        key,
        queue: [],
        head: 0,
        good: false,
        firstAccepted: undefined,
        lastAccepted: 0,
        scheduled: false,
      };
      this.sources.set(key, s);
    }
    s.queue.push(m);
    this.queued++;
    this.queuedBytes += m.payload.length;
    if (!s.scheduled) {
      s.scheduled = true;
      (s.good ? this.good : this.others).push(s);
    }
    if (this.queued > this.maxQueued || this.queuedBytes > this.maxBytes) this.shed(s);
    this.kick();
  }

  stats(): IntakeStats {
    let goodSources = 0;
    for (const s of this.sources.values()) if (s.good) goodSources++;
    return {
      queued: this.queued,
      queuedBytes: this.queuedBytes,
      dropped: this.dropped,
      sources: this.sources.size,
      goodSources,
    };
  }

  /** Resolves when nothing waits (for --once: the census is complete only once it was all checked). */
  idle(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs everything queued now, synchronously (tests; --once before it prints). */
  drainAll(): void {
    while (this.queued > 0 && this.step());
    this.wakeIdle();
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    this.defer(() => this.slice());
  }

  /**
   * One turn of work: good sources for up to sliceMs, then the others for at most othersSliceMs, then
   * yield. Under a flood the socket holds more hostile bytes than real ones, and a real agent's next
   * message is behind them in the TCP stream: reading it sooner matters more than checking garbage.
   */
  private slice(): void {
    const clock = this.options.clock;
    const end = clock.monotonic() + this.sliceMs;
    let more = true;
    while (more && this.good.size > 0 && clock.monotonic() < end) {
      for (let i = 0; i < 16 && more && this.good.size > 0; i++) more = this.step();
    }
    const endOthers = Math.min(end, clock.monotonic() + this.othersSliceMs);
    while (more && this.queued > 0 && clock.monotonic() < endOthers) {
      for (let i = 0; i < 16 && more && this.queued > 0; i++) more = this.step();
    }
    if (this.queued > 0 && more) {
      this.defer(() => this.slice());
      return;
    }
    this.draining = false;
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** One message from the next source in turn, good sources first; false when nothing is scheduled. */
  private step(): boolean {
    const ring = this.good.size > 0 ? this.good : this.others;
    const s = ring.shift();
    if (!s) return false;
    if (s.head >= s.queue.length) {
      // Emptied by shed() while it waited its turn.
      s.queue = [];
      s.head = 0;
      s.scheduled = false;
      return true;
    }
    const m = s.queue[s.head];
    s.queue[s.head] = undefined as unknown as FleetMessage;
    s.head++;
    this.queued--;
    if (m) {
      this.queuedBytes -= m.payload.length;
      this.learn(s, this.handle(m));
    }
    if (s.head >= s.queue.length) {
      s.queue = [];
      s.head = 0;
      s.scheduled = false;
      return true;
    }
    if (s.head > 1024 && s.head * 2 > s.queue.length) {
      s.queue = s.queue.slice(s.head);
      s.head = 0;
    }
    (s.good ? this.good : this.others).push(s);
    return true;
  }

  private learn(s: Source, verdict: Verdict): void {
    const now = this.options.clock.monotonic();
    if (verdict === 'accepted') {
      // A gap longer than forgetAfterMs starts the trust period again.
      if (s.firstAccepted === undefined || now - s.lastAccepted > this.forgetAfterMs) s.firstAccepted = now;
      s.lastAccepted = now;
      if (now - s.firstAccepted >= this.trustAfterMs) s.good = true;
      return;
    }
    if (s.good && now - s.lastAccepted > this.forgetAfterMs) s.good = false;
  }

  /**
   * Over a bound: drop the newest message of the source that just pushed when it is not good (O(1) under
   * a flood), else of the longest queue of a source that is not good, else of the longest good one.
   */
  private shed(pusher: Source): void {
    while (this.queued > this.maxQueued || this.queuedBytes > this.maxBytes) {
      let victim: Source | undefined = !pusher.good && pusher.queue.length > pusher.head ? pusher : undefined;
      const longer = (a: Source | undefined, b: Source) =>
        !a || b.queue.length - b.head > a.queue.length - a.head ? b : a;
      if (!victim) for (const s of this.others) victim = longer(victim, s);
      if (!victim || victim.queue.length <= victim.head)
        for (const s of this.good) victim = longer(victim, s);
      const m = victim && victim.queue.length > victim.head ? victim.queue.pop() : undefined;
      if (!m) return;
      this.queued--;
      this.queuedBytes -= m.payload.length;
      this.dropped++;
    }
  }

  /** Too many sources remembered (fake ids): forget those with nothing queued that never earned trust. */
  private forgetIdle(): void {
    for (const [key, s] of this.sources) if (!s.scheduled && !s.good) this.sources.delete(key);
  }
}
