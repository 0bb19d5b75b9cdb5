/**
 * Runs the pure machine (machine.ts) for one target: executes its effects with the injected clock and
 * driver, turns driver outcomes back into machine events, and emits AgentEvents. Every wait is bounded
 * (open, probe and close timeouts) and every timer is cleared, so an unplug mid-transfer or a driver that
 * ignores its AbortSignal can never hang the session or the agent's SIGINT path.
 */

import { ErrorCodes, ReplugError } from '../errors.js';
import type { Logger } from '../log.js';
import { targetKey } from '../usb/ids.js';
import { stamp } from '../usb/stamps.js';
import type { UsbDevice } from '../usb/types.js';
import type { TimerHandle } from '../util/clock.js';
import { backoffDelay, resolveBackoff, withJitter } from './backoff.js';
import { type Candidate, CandidateSet } from './candidates.js';
import { withDeadline } from './deadline.js';
import { DEFAULT_PROBE_INTERVAL_MS } from './drivers/types.js';
import { toErrorInfo } from './error-info.js';
import type { ErrorInfo } from './events.js';
import {
  type Effect,
  initialState,
  type MachineEmit,
  type MachineEvent,
  type MachineOptions,
  type MachineState,
  transition,
} from './machine.js';
import {
  DEFAULT_TIMEOUTS,
  type SessionOptions,
  type SessionSnapshot,
  type SessionTimeouts,
} from './options.js';
import { StatsRecorder } from './stats.js';

export type { EmitFn, SessionOptions, SessionSnapshot, SessionTimeouts } from './options.js';
export { DEFAULT_TIMEOUTS } from './options.js';

export class Session<H = unknown> {
  readonly key: string;
  private state: MachineState<H> = initialState;
  private readonly queue: MachineEvent<H>[] = [];
  private dispatching = false;
  private readonly candidates: CandidateSet;
  private current: Candidate | undefined;
  /** Monotonic ms the current reconnect cycle began (device seen, or wedge detected). */
  private cycleStart = 0;
  private retryTimer: TimerHandle | undefined;
  private probeTimer: TimerHandle | undefined;
  private controller: AbortController | undefined;
  /** Bumped on every open: results of older opens/probes are stale. */
  private generation = 0;
  private since: number;
  private readonly stats = new StatsRecorder();
  private readonly orphans = new Set<Promise<void>>();
  private readonly stopWaiters: Array<() => void> = [];
  private readonly machineOptions: MachineOptions;
  private readonly timeouts: SessionTimeouts;
  private readonly log: Logger;

  constructor(private readonly opts: SessionOptions<H>) {
    this.key = targetKey(opts.target);
    this.candidates = new CandidateSet(opts.target);
    this.log = opts.log.child({ target: this.key });
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    const backoff = resolveBackoff(opts.backoff);
    const random = opts.random ?? Math.random;
    this.machineOptions = {
      delayFor: (failures) => withJitter(backoff, backoffDelay(backoff, failures), random),
      probe: (opts.driver.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS) > 0,
    };
    this.since = opts.clock.now();
  }

  /** Feeds the devices present at start; `seenAt` defaults to now on the session's clock. */
  start(present: readonly UsbDevice[], seenAt = this.opts.clock.monotonic()): void {
    for (const d of present) this.deviceAdded(d, seenAt);
  }

  deviceAdded(device: UsbDevice, seenAt = this.opts.clock.monotonic()): void {
    stamp('present', device);
    if (this.state.name === 'stopped' || !this.candidates.add(device, seenAt)) return;
    if (!this.current) this.choose(seenAt);
  }

  deviceRemoved(device: Pick<UsbDevice, 'bus' | 'address'>): void {
    const removed = this.candidates.remove(device);
    if (!removed || removed !== this.current) return;
    this.current = undefined;
    this.dispatch({ type: 'device.gone' });
    // Fall back to another matching device that is still present (issue 2: several may match).
    this.choose(this.opts.clock.monotonic());
  }

  /**
   * Closes the session and opens it again on the same device (issue 18's `restart`). false when there is
   * nothing to restart: no device present, or the session is already closing or stopped.
   */
  restart(): boolean {
    const name = this.state.name;
    if (name !== 'up' && name !== 'starting' && name !== 'backoff') return false;
    this.dispatch({ type: 'restart' });
    return true;
  }

  /** Ends the session: aborts driver I/O, closes, clears timers. Resolves when stopped; never hangs. */
  async stop(): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.state.name === 'stopped') resolve();
      else this.stopWaiters.push(resolve);
    });
    this.dispatch({ type: 'stop' });
    await done;
    this.candidates.clear();
    this.current = undefined;
    await Promise.all([...this.orphans]);
  }

  snapshot(): SessionSnapshot {
    const snap: SessionSnapshot = {
      target: this.key,
      state: this.state.name,
      since: this.since,
      present: this.candidates.size,
      stats: this.stats.snapshot(),
    };
    if ('device' in this.state) snap.device = this.state.device;
    return snap;
  }

  private choose(now: number): void {
    const next = this.candidates.best();
    if (!next) return;
    this.current = next;
    // A fallback device may have been seen long ago; its reconnect starts now.
    this.cycleStart = Math.max(next.seenAt, now);
    this.dispatch({ type: 'device.present', device: next.device });
  }

  private dispatch(event: MachineEvent<H>): void {
    this.queue.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let e = this.queue.shift(); e; e = this.queue.shift()) {
        const out = transition(this.state, e, this.machineOptions);
        this.state = out.state;
        for (const effect of out.effects) this.run(effect);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private run(effect: Effect<H>): void {
    const { clock } = this.opts;
    switch (effect.type) {
      case 'open':
        this.open(effect.device);
        return;
      case 'abort':
        this.controller?.abort(
          new ReplugError(ErrorCodes.USB_GONE, 'session ended (device removed or stopping)'),
        );
        return;
      case 'close':
        void this.close(effect.handle, true);
        return;
      case 'probe':
        this.probe(effect.handle);
        return;
      case 'startTimer':
        this.retryTimer = clock.setTimeout(() => {
          this.retryTimer = undefined;
          this.dispatch({ type: 'timer.fired' });
        }, effect.ms);
        return;
      case 'cancelTimer':
        if (this.retryTimer) clock.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        return;
      case 'startProbeTimer':
        this.probeTimer = clock.setTimeout(() => {
          this.probeTimer = undefined;
          this.dispatch({ type: 'probe.due' });
        }, this.opts.driver.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS);
        return;
      case 'cancelProbeTimer':
        if (this.probeTimer) clock.clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
        return;
      case 'emit':
        this.emit(effect.event);
        return;
    }
  }

  private open(device: UsbDevice): void {
    const generation = ++this.generation;
    const controller = new AbortController();
    this.controller = controller;
    this.stats.attempt();
    const ctx = { signal: controller.signal, log: this.log };
    const abort = () => controller.abort(new ReplugError(ErrorCodes.USB_TIMEOUT, 'open timed out'));
    stamp('open', device);
    void withDeadline(
      this.opts.clock,
      () => this.opts.driver.open(device, ctx),
      this.timeouts.openTimeoutMs,
      abort,
      (handle) => this.closeOrphan(handle),
    ).then((r) => {
      stamp('opened', device);
      if (generation !== this.generation) {
        if (r.ok) this.closeOrphan(r.value);
        return;
      }
      this.dispatch(
        r.ok ? { type: 'open.ok', handle: r.value } : { type: 'open.failed', error: toErrorInfo(r.error) },
      );
    });
  }

  private probe(handle: H): void {
    const generation = this.generation;
    const ctx = { signal: this.controller?.signal ?? new AbortController().signal, log: this.log };
    void withDeadline(
      this.opts.clock,
      () => this.opts.driver.probe(handle, ctx),
      this.timeouts.probeTimeoutMs,
      () => {},
    ).then((r) => {
      // The generation only moves on open: a probe in flight when the device was unplugged settles after
      // the session went down, and must not count as a wedge of the (gone) session (seen in the lab).
      if (generation !== this.generation || this.state.name !== 'up' || this.state.handle !== handle) return;
      if (r.ok) {
        this.dispatch({ type: 'probe.ok' });
        return;
      }
      const error = toErrorInfo(r.error);
      this.stats.probeFailed(error);
      this.log.warn({ code: error.code, err: error.message }, 'liveness probe failed; reopening the device');
      // The next open uses a new generation; the wedge is a new reconnect cycle.
      this.cycleStart = this.opts.clock.monotonic();
      this.dispatch({ type: 'probe.failed', error });
    });
  }

  /** Closes a handle; when `report` the machine hears `closed`, even after a close timeout. */
  private close(handle: H, report: boolean): Promise<void> {
    const controller = new AbortController();
    const ctx = { signal: controller.signal, log: this.log };
    const ms = this.timeouts.closeTimeoutMs;
    return withDeadline(
      this.opts.clock,
      () => this.opts.driver.close(handle, ctx),
      ms,
      () => controller.abort(),
    ).then((r) => {
      let error: ErrorInfo | undefined;
      if (!r.ok) {
        error = toErrorInfo(r.error);
        this.log.warn({ code: error.code, err: error.message }, 'driver close failed; continuing');
      }
      if (report) this.dispatch(error ? { type: 'closed', error } : { type: 'closed' });
    });
  }

  /** A handle from an open that the session gave up on (timed out, superseded): close it, tell no one. */
  private closeOrphan(handle: H): void {
    const p = this.close(handle, false).finally(() => this.orphans.delete(p));
    this.orphans.add(p);
  }

  private emit(event: MachineEmit): void {
    const target = this.key;
    try {
      switch (event.name) {
        case 'session.state': {
          this.since = this.opts.clock.now();
          const { name: _n, ...rest } = event;
          // debug: the agent's log (src/agent/features/log.ts) words these for users, once.
          this.log.debug(
            { state: event.state, previous: event.previous, reason: event.reason },
            `session ${event.state}`,
          );
          if (event.state === 'up' && 'device' in event && event.device) stamp('up', event.device);
          // Waiters first: a throwing listener must not leave stop() pending forever.
          if (event.state === 'stopped') for (const w of this.stopWaiters.splice(0)) w();
          this.opts.emit('session.state', { target, ...rest });
          return;
        }
        case 'reconnect.attempt':
          this.opts.emit('reconnect.attempt', { target, attempt: event.attempt, device: event.device });
          return;
        case 'reconnect.succeeded': {
          const durationMs = Math.max(0, Math.round(this.opts.clock.monotonic() - this.cycleStart));
          this.stats.succeeded(durationMs);
          this.log.debug(
            { attempts: event.attempts, durationMs },
            `session up: reconnect took ${durationMs} ms`,
          );
          this.opts.emit('reconnect.succeeded', {
            target,
            attempts: event.attempts,
            device: event.device,
            durationMs,
          });
          return;
        }
        case 'reconnect.failed':
          this.stats.failedAttempt(event.error);
          this.log.debug(
            { code: event.error.code, err: event.error.message, retryInMs: event.retryInMs },
            'open failed',
          );
          this.opts.emit('reconnect.failed', { target, ...withoutName(event) });
          return;
      }
    } catch (err) {
      // A throwing listener must not break the session's bookkeeping.
      this.log.error({ err }, 'an event listener threw');
    }
  }
}

function withoutName<T extends { name: string }>(e: T): Omit<T, 'name'> {
  const { name: _name, ...rest } = e;
  return rest;
}
