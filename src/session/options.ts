/** Options and public shapes of a Session (session.ts), kept apart so the runner stays readable. */

import type { Logger } from '../log.js';
import type { TargetSpec } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import type { Clock } from '../util/clock.js';
import type { BackoffOptions } from './backoff.js';
import type { SessionDriver } from './drivers/types.js';
import type { SessionEvents, SessionStateName } from './events.js';
import type { TargetStats } from './stats.js';
import type { TargetEvents } from './target-state.js';

/** What sessions and their manager emit: their events and target states (the agent's bus takes them). */
export type SessionBusEvents = SessionEvents & TargetEvents;

/** Compatible with `EventEmitter<AgentEvents>.emit.bind(bus)` and the agent's bus emit. */
export type EmitFn = <K extends keyof SessionBusEvents>(name: K, ...args: SessionBusEvents[K]) => unknown;

export interface SessionTimeouts {
  /** Longest a driver's open may take before it counts as failed (default 10000 ms). */
  openTimeoutMs: number;
  /** Longest a probe may take before the device counts as wedged (default 5000 ms). */
  probeTimeoutMs: number;
  /** Longest a close may take; after it the session moves on and logs a warning (default 2000 ms). */
  closeTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<SessionTimeouts> = Object.freeze({
  openTimeoutMs: 10_000,
  probeTimeoutMs: 5_000,
  closeTimeoutMs: 2_000,
});

export interface SessionOptions<H = unknown> {
  target: TargetSpec;
  driver: SessionDriver<H>;
  clock: Clock;
  log: Logger;
  emit: EmitFn;
  backoff?: Partial<BackoffOptions>;
  timeouts?: Partial<SessionTimeouts>;
  /** Random source for backoff jitter (default Math.random). */
  random?: () => number;
}

/** A session's own view; the manager turns it into a TargetState (target-state.ts). */
export interface SessionSnapshot {
  /** `vvvv:pppp[:serial]`. */
  target: string;
  state: SessionStateName;
  /** Wall-clock ms when the current state was entered. */
  since: number;
  device?: UsbDevice;
  /** Matching devices present right now. */
  present: number;
  stats: TargetStats;
}
