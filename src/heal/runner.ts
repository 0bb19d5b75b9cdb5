/**
 * Runs one ladder (ladder.ts) per target: turns session events into ladder events, executes the effects
 * (a step through its port, a record as a `heal.step` event and counts), and answers requests. It is also
 * the service other features call (`HealService.request`: issue 18's `reset` request). A step in flight is
 * aborted on stop (each step writes its second half, authorized 1 or disable 0, even then).
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Logger } from '../log.js';
import { toErrorInfo } from '../session/error-info.js';
import type { ErrorInfo, SessionEvents } from '../session/events.js';
import { type TargetSpec, targetKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import type { Clock } from '../util/clock.js';
import { countRecord, type HealCounts, noCounts, totals } from './counts.js';
import type { HealStepEvent } from './events.js';
import { initialLadder, type LadderEvent, type LadderState, ladderTransition } from './ladder.js';
import type { HealStep } from './steps/types.js';
import type { DeviceStep, LadderOptions, StepName } from './types.js';

export interface HealReply {
  accepted: boolean;
  error?: ErrorInfo;
}

/** What other features may call (registered as `ctx.services.heal` when --heal is on). */
export interface HealService {
  /**
   * Climbs the ladder for `target` (a key, `vvvv:pppp[:SERIAL]`) from its first device step, or runs only
   * `step`. Resolves at once with whether it was accepted (not: whether it healed; `heal.step` events say
   * that). Refused: unknown target, absent device, a step not turned on, a climb under way, the rate limit.
   */
  request(target: string, step?: StepName): HealReply;
  counts(target: string): HealCounts | undefined;
  totals(): ReturnType<typeof totals>;
}

export interface HealRunnerOptions {
  ladder: LadderOptions;
  targets: readonly TargetSpec[];
  steps: ReadonlyMap<DeviceStep, HealStep>;
  clock: Clock;
  log: Logger;
  /** The device the target's session is on now (the session manager's state). */
  deviceOf(target: string): UsbDevice | undefined;
  emit(event: HealStepEvent): void;
  /**
   * Asks the target's session to open again now (after a step acted). Without it the next open is the
   * session's backoff away: the ladder waited for nothing, and a backoff past the step wait counted a step
   * that worked as down.
   */
  retry?(target: string): void;
}

interface Entry {
  spec: TargetSpec;
  state: LadderState;
  counts: HealCounts;
  /** A climb started and its first record is still to come (counts.climbs). */
  climbPending: boolean;
  running?: { controller: AbortController; done: Promise<void> };
}

export class HealRunner implements HealService {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  constructor(private readonly o: HealRunnerOptions) {
    for (const spec of o.targets)
      this.entries.set(targetKey(spec), {
        spec,
        state: initialLadder,
        counts: noCounts(),
        climbPending: false,
      });
  }

  /** A session event for one of our targets. */
  sessionState(e: SessionEvents['session.state'][0]): void {
    const now = this.o.clock.monotonic();
    if (e.state === 'up') {
      this.feed(e.target, { type: 'up', now });
      return;
    }
    if (e.state === 'waiting' || e.state === 'stopped') {
      this.feed(e.target, { type: 'gone', now });
      return;
    }
    this.feed(e.target, { type: 'present', now });
    // session machine: a failed liveness probe ends `up` with reason "probe failed: CODE".
    const wedged = e.state === 'terminating' && e.previous === 'up' && e.reason?.startsWith('probe failed');
    this.feed(e.target, { type: wedged ? 'wedged' : 'down', now });
  }

  /** A failed open; busy or access denied is another program's device, never a reason to reset it. */
  reconnectFailed(target: string, code?: string): void {
    const blocked = code === ErrorCodes.USB_BUSY || code === ErrorCodes.USB_ACCESS;
    this.feed(target, { type: blocked ? 'blocked' : 'failed', now: this.o.clock.monotonic() });
  }

  tick(): void {
    const now = this.o.clock.monotonic();
    for (const key of this.entries.keys()) this.feed(key, { type: 'tick', now });
  }

  request(target: string, step?: StepName): HealReply {
    if (!this.entries.has(target))
      return {
        accepted: false,
        error: { code: ErrorCodes.HEAL_REFUSED, message: `${target} is not a target` },
      };
    return (
      this.feed(target, { type: 'request', now: this.o.clock.monotonic(), ...(step ? { step } : {}) }) ?? {
        accepted: false,
      }
    );
  }

  counts(target: string): HealCounts | undefined {
    return this.entries.get(target)?.counts;
  }

  totals() {
    return totals([...this.entries.values()].map((e) => e.counts));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const running = [...this.entries.values()].flatMap((e) => (e.running ? [e.running] : []));
    for (const r of running) r.controller.abort(new ReplugError(ErrorCodes.USB_GONE, 'agent stopping'));
    await Promise.all(running.map((r) => r.done));
  }

  private feed(key: string, event: LadderEvent): HealReply | undefined {
    const entry = this.entries.get(key);
    if (!entry || this.stopped) return undefined;
    const before = entry.state.phase.name;
    const out = ladderTransition(entry.state, event, this.o.ladder);
    entry.state = out.state;
    const climbing = (p: string) => p === 'acting' || p === 'waiting';
    if (!climbing(before) && climbing(out.state.phase.name)) entry.climbPending = true;
    let reply: HealReply | undefined;
    for (const effect of out.effects) {
      if (effect.type === 'reply')
        reply = { accepted: effect.accepted, ...(effect.error ? { error: effect.error } : {}) };
      else if (effect.type === 'run') this.run(key, entry, effect.step);
      else this.record(key, entry, effect.record);
    }
    return reply;
  }

  private run(key: string, entry: Entry, name: DeviceStep): void {
    const step = this.o.steps.get(name);
    const device = this.o.deviceOf(key);
    const finish = (error?: ErrorInfo) => {
      entry.running = undefined;
      this.feed(key, { type: 'done', now: this.o.clock.monotonic(), ...(error ? { error } : {}) });
    };
    if (!step || !device) {
      const error = step
        ? { code: ErrorCodes.HEAL_NOT_PRESENT, message: 'the target has no device now' }
        : { code: ErrorCodes.HEAL_UNSUPPORTED, message: `no ${name} step here` };
      queueMicrotask(() => finish(error));
      return;
    }
    const others = [...this.entries.values()].filter((e) => e !== entry).map((e) => e.spec);
    const controller = new AbortController();
    this.o.log.info({ target: key, step: name, device }, `heal ${key}: ${name}`);
    const done = step.run({ spec: entry.spec, device, others }, controller.signal).then(
      () => {
        if (!this.stopped) this.o.retry?.(key);
        finish();
      },
      (err: unknown) => finish(toErrorInfo(err)),
    );
    entry.running = { controller, done };
  }

  private record(key: string, entry: Entry, record: HealStepEvent | Omit<HealStepEvent, 'target'>): void {
    entry.counts = countRecord(entry.counts, record, this.o.clock.now(), entry.climbPending);
    entry.climbPending = false;
    const device = this.o.deviceOf(key);
    const event: HealStepEvent = { ...record, target: key, ...(device ? { device } : {}) };
    const next = record.next ? `; next: ${record.next}` : '';
    const why = record.error ? `: ${record.error.message} [${record.error.code}]` : '';
    const line = `heal ${key}: ${record.step} ${record.outcome} after ${Math.round(record.ms)} ms${why}${next}`;
    if (record.outcome === 'up') this.o.log.info({ event: 'heal.step', ...event }, line);
    else this.o.log.warn({ event: 'heal.step', ...event }, line);
    this.o.emit(event);
  }
}
