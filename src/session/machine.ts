/**
 * The restartable session as a pure state machine (STYLE habit 3): `transition(state, event)` returns the
 * next state and the effects the runner (session.ts) must execute. No timers, promises or I/O here, so
 * every transition is tested as a table (test/session/machine.test.ts).
 *
 *   waiting --present--> starting --open.ok--> up --gone/probe.failed/stop--> terminating --closed--> ...
 *                           |  ^                                                  |
 *                   open.failed |timer.fired                      (next: wait | retry | start | stop)
 *                           v  |
 *                         backoff
 */

import { instanceId, type UsbDevice } from '../usb/types.js';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import type { SessionStateName } from './events.js';
import type { Effect, MachineEmit, MachineEvent, MachineState } from './machine-types.js';

export type { AfterClose, Effect, MachineEmit, MachineEvent, MachineState } from './machine-types.js';

export interface MachineOptions {
  /** Retry delay after `failures` consecutive failures. Default: 250 ms doubling, capped at 5000 ms. */
  delayFor: (failures: number) => number;
  // Called once per failure, so a jittered delayFor stays consistent with the retryInMs it reports.
  /** Whether to schedule liveness probes while up (driver.probeIntervalMs > 0). */
  probe: boolean;
}

export const DEFAULT_MACHINE_OPTIONS: Readonly<MachineOptions> = Object.freeze({
  delayFor: (failures: number) => backoffDelay(DEFAULT_BACKOFF, failures),
  probe: true,
});

export interface Transition<H = unknown> {
  state: MachineState<H>;
  effects: Effect<H>[];
}

export const initialState: MachineState<never> = { name: 'waiting' };

function sameInstance(a: UsbDevice, b: UsbDevice): boolean {
  return instanceId(a) === instanceId(b);
}

function emitState(
  from: MachineState<unknown>,
  to: SessionStateName,
  reason?: string,
  device?: UsbDevice,
): Effect<never> {
  const event: MachineEmit = { name: 'session.state', state: to, previous: from.name };
  if (reason !== undefined) event.reason = reason;
  if (device !== undefined) event.device = device;
  return { type: 'emit', event };
}

function begin<H>(
  from: MachineState<H>,
  device: UsbDevice,
  attempt: number,
  failures: number,
  why: string,
): Transition<H> {
  return {
    state: { name: 'starting', device, attempt, failures } as MachineState<H>,
    // The open goes first: the driver's first USB call is issued before the listeners of `starting` run
    // (publishing, logging: tens of ms on a slow CPU, measured in the lab's `equal` scenario). Listeners
    // still see `starting` before any outcome, which comes back asynchronously.
    effects: [
      { type: 'open', device, attempt },
      emitState(from, 'starting', why, device),
      { type: 'emit', event: { name: 'reconnect.attempt', attempt, device } },
    ] as Effect<H>[],
  };
}

function enterBackoff<H>(
  from: MachineState<H>,
  device: UsbDevice,
  attempt: number,
  failures: number,
  reason: string,
  delayMs: number,
  extra: Effect<H>[] = [],
): Transition<H> {
  return {
    state: { name: 'backoff', device, attempt, failures, delayMs },
    effects: [...extra, emitState(from, 'backoff', reason, device), { type: 'startTimer', ms: delayMs }],
  };
}

/** Leaves terminating once nothing of the old session is left open. */
function finish<H>(from: MachineState<H> & { name: 'terminating' }, opts: MachineOptions): Transition<H> {
  const next = from.next;
  switch (next.kind) {
    case 'wait':
      return { state: { name: 'waiting' }, effects: [emitState(from, 'waiting', 'device removed')] };
    case 'stop':
      return { state: { name: 'stopped' }, effects: [emitState(from, 'stopped', 'stopped')] };
    case 'start':
      return begin(from, next.device, 1, 0, next.why ?? 'another matching device is present');
    case 'retry':
      // attempt 0: the retry timer starts a new reconnect cycle at attempt 1.
      return enterBackoff(
        from,
        from.device,
        0,
        next.failures,
        'retrying after probe failure',
        opts.delayFor(next.failures),
      );
  }
}

const stay = <H>(state: MachineState<H>): Transition<H> => ({ state, effects: [] });

type In<H, N extends MachineState<H>['name']> = Extract<MachineState<H>, { name: N }>;

/** The pure transition: one function per state below, so each reads as that state's row of the table. */
export function transition<H>(
  state: MachineState<H>,
  event: MachineEvent<H>,
  opts: MachineOptions = DEFAULT_MACHINE_OPTIONS,
): Transition<H> {
  if (event.type === 'stop' && state.name !== 'stopped') return stopping(state);
  if (event.type === 'restart') return restarting(state);
  switch (state.name) {
    case 'waiting':
      return event.type === 'device.present'
        ? begin(state, event.device, 1, 0, 'device present')
        : stay(state);
    case 'starting':
      return fromStarting(state, event, opts);
    case 'up':
      return fromUp(state, event, opts);
    case 'terminating':
      return fromTerminating(state, event, opts);
    case 'backoff':
      return fromBackoff(state, event);
    case 'stopped':
      return stay(state);
  }
}

function stopping<H>(state: Exclude<MachineState<H>, { name: 'stopped' }>): Transition<H> {
  switch (state.name) {
    case 'waiting':
      return { state: { name: 'stopped' }, effects: [emitState(state, 'stopped', 'stopped')] };
    case 'backoff':
      return {
        state: { name: 'stopped' },
        effects: [{ type: 'cancelTimer' }, emitState(state, 'stopped', 'stopped')],
      };
    case 'starting':
      return {
        state: { name: 'terminating', device: state.device, awaitingOpen: true, next: { kind: 'stop' } },
        effects: [{ type: 'abort' }, emitState(state, 'terminating', 'stopping', state.device)],
      };
    case 'up':
      return {
        state: { name: 'terminating', device: state.device, awaitingOpen: false, next: { kind: 'stop' } },
        effects: [
          { type: 'cancelProbeTimer' },
          { type: 'abort' },
          emitState(state, 'terminating', 'stopping', state.device),
          { type: 'close', handle: state.handle },
        ],
      };
    case 'terminating':
      return stay({ ...state, next: { kind: 'stop' } });
  }
}

const RESTART = 'restart requested';

/** Up or starting: close (or abort the open), then start again on the same device; backoff: retry now. */
function restarting<H>(state: MachineState<H>): Transition<H> {
  switch (state.name) {
    case 'up':
      return {
        state: {
          name: 'terminating',
          device: state.device,
          awaitingOpen: false,
          next: { kind: 'start', device: state.device, why: RESTART },
        },
        effects: [
          { type: 'cancelProbeTimer' },
          { type: 'abort' },
          emitState(state, 'terminating', RESTART, state.device),
          { type: 'close', handle: state.handle },
        ],
      };
    case 'starting':
      return {
        state: {
          name: 'terminating',
          device: state.device,
          awaitingOpen: true,
          next: { kind: 'start', device: state.device, why: RESTART },
        },
        effects: [{ type: 'abort' }, emitState(state, 'terminating', RESTART, state.device)],
      };
    case 'backoff': {
      const started = begin<H>(state, state.device, 1, 0, RESTART);
      return { state: started.state, effects: [{ type: 'cancelTimer' }, ...started.effects] };
    }
    default:
      // waiting (no device), terminating (already closing), stopped: nothing to restart.
      return stay(state);
  }
}

function fromStarting<H>(
  state: In<H, 'starting'>,
  event: MachineEvent<H>,
  opts: MachineOptions,
): Transition<H> {
  switch (event.type) {
    case 'open.ok':
      return {
        state: { name: 'up', device: state.device, handle: event.handle },
        effects: [
          emitState(state, 'up', undefined, state.device),
          {
            type: 'emit',
            event: { name: 'reconnect.succeeded', attempts: state.attempt, device: state.device },
          },
          ...(opts.probe ? [{ type: 'startProbeTimer' } as const] : []),
        ],
      };
    case 'open.failed': {
      const failures = state.failures + 1;
      const retryInMs = opts.delayFor(failures);
      const failed: Effect<H> = {
        type: 'emit',
        event: {
          name: 'reconnect.failed',
          attempt: state.attempt,
          device: state.device,
          error: event.error,
          retryInMs,
        },
      };
      const reason = `open failed: ${event.error.code}`;
      return enterBackoff(state, state.device, state.attempt, failures, reason, retryInMs, [failed]);
    }
    case 'device.gone':
      // The open is still running: abort it and close its handle if it resolves anyway.
      return {
        state: { name: 'terminating', device: state.device, awaitingOpen: true, next: { kind: 'wait' } },
        effects: [{ type: 'abort' }, emitState(state, 'terminating', 'device removed', state.device)],
      };
    default:
      return stay(state);
  }
}

function fromUp<H>(state: In<H, 'up'>, event: MachineEvent<H>, opts: MachineOptions): Transition<H> {
  switch (event.type) {
    case 'probe.due':
      return { state, effects: [{ type: 'probe', handle: state.handle }] };
    case 'probe.ok':
      return { state, effects: opts.probe ? [{ type: 'startProbeTimer' }] : [] };
    case 'probe.failed':
      // A wedged device that was not unplugged: close and reopen it (issue 2).
      return {
        state: {
          name: 'terminating',
          device: state.device,
          awaitingOpen: false,
          next: { kind: 'retry', failures: 1 },
        },
        effects: [
          { type: 'cancelProbeTimer' },
          emitState(state, 'terminating', `probe failed: ${event.error.code}`, state.device),
          { type: 'close', handle: state.handle },
        ],
      };
    case 'device.gone':
      return {
        state: { name: 'terminating', device: state.device, awaitingOpen: false, next: { kind: 'wait' } },
        effects: [
          { type: 'cancelProbeTimer' },
          { type: 'abort' },
          emitState(state, 'terminating', 'device removed', state.device),
          { type: 'close', handle: state.handle },
        ],
      };
    default:
      return stay(state);
  }
}

function fromTerminating<H>(
  state: In<H, 'terminating'>,
  event: MachineEvent<H>,
  opts: MachineOptions,
): Transition<H> {
  switch (event.type) {
    case 'open.ok':
      if (!state.awaitingOpen) return stay(state);
      return { state: { ...state, awaitingOpen: false }, effects: [{ type: 'close', handle: event.handle }] };
    case 'open.failed':
      return state.awaitingOpen ? finish(state, opts) : stay(state);
    case 'closed':
      return state.awaitingOpen ? stay(state) : finish(state, opts);
    case 'device.gone':
      return state.next.kind === 'stop' ? stay(state) : stay({ ...state, next: { kind: 'wait' } });
    case 'device.present':
      return state.next.kind === 'stop'
        ? stay(state)
        : stay({ ...state, next: { kind: 'start', device: event.device } });
    default:
      return stay(state);
  }
}

function fromBackoff<H>(state: In<H, 'backoff'>, event: MachineEvent<H>): Transition<H> {
  switch (event.type) {
    case 'timer.fired':
      return begin(state, state.device, state.attempt + 1, state.failures, 'retry');
    case 'device.gone':
      return {
        state: { name: 'waiting' },
        effects: [{ type: 'cancelTimer' }, emitState(state, 'waiting', 'device removed')],
      };
    case 'device.present': {
      if (sameInstance(state.device, event.device)) return stay(state);
      const started = begin<H>(state, event.device, 1, 0, 'another matching device is present');
      return { state: started.state, effects: [{ type: 'cancelTimer' }, ...started.effects] };
    }
    default:
      return stay(state);
  }
}
