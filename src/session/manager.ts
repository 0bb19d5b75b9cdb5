/**
 * One Session per target (`--target 1209:0001 --target 0403:6001:SERIAL`), fed from one device stream.
 * The manager owns the listeners it adds to the agent's bus and removes them on stop (STYLE habit 4), and
 * stop() resolves only when every session has closed its device: the SIGINT path awaits it.
 *
 * After every session event that changes what `target/<key>/state` says (a state change, a reconnect that
 * succeeded or failed) it emits `target.changed` with the target's TargetState, built from the spec it
 * parsed once (issue 13: the agent used to ask back and re-parse the key).
 */

import type { Logger } from '../log.js';
import type { UsbEvents } from '../usb/events.js';
import { type TargetSpec, targetKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import type { Clock } from '../util/clock.js';
import type { BackoffOptions } from './backoff.js';
import type { SessionDriver } from './drivers/types.js';
import type { EmitFn, SessionTimeouts } from './options.js';
import { Session } from './session.js';
import { type TargetState, toTargetState } from './target-state.js';

export interface SessionManagerOptions<H = unknown> {
  targets: readonly TargetSpec[];
  driver: SessionDriver<H>;
  clock: Clock;
  log: Logger;
  emit: EmitFn;
  backoff?: Partial<BackoffOptions>;
  timeouts?: Partial<SessionTimeouts>;
  random?: () => number;
}

type Added = UsbEvents['device.added'][0];
type Removed = UsbEvents['device.removed'][0];

/** The part of the agent's event bus the manager listens to (an EventEmitter<AgentEvents> fits). */
export interface DeviceBus {
  on(event: 'device.added', listener: (e: Added) => void): unknown;
  on(event: 'device.removed', listener: (e: Removed) => void): unknown;
  on(event: 'device.identified', listener: (e: Added) => void): unknown;
  off(event: 'device.added', listener: (e: Added) => void): unknown;
  off(event: 'device.removed', listener: (e: Removed) => void): unknown;
  off(event: 'device.identified', listener: (e: Added) => void): unknown;
}

export interface SessionManager {
  /** Feeds the current device list (e.g. the watcher's `current()`); seenAt defaults to now. */
  start(present: readonly UsbDevice[], seenAt?: number): void;
  deviceAdded(device: UsbDevice, seenAt?: number): void;
  deviceRemoved(device: Pick<UsbDevice, 'bus' | 'address'>): void;
  /** Listens to device.added/device.removed on `bus`; returns the detach function (stop() also detaches). */
  attach(bus: DeviceBus): () => void;
  /** One entry per target, in the order given, for `target/<key>/state`. */
  snapshot(): TargetState[];
  get(target: string): TargetState | undefined;
  /** Closes and reopens the target's session (session.restart()); false for an unknown or idle target. */
  restart(target: string): boolean;
  /** Closes every session (aborting stuck drivers, bounded by the close timeout) and detaches. */
  stop(): Promise<void>;
}

/** Session events after which the target's retained state changed. */
const CHANGES_STATE = new Set(['session.state', 'reconnect.failed', 'reconnect.succeeded']);

export function createSessionManager<H>(options: SessionManagerOptions<H>): SessionManager {
  const sessions = new Map<string, { session: Session<H>; spec: TargetSpec }>();
  const state = (key: string) => {
    const s = sessions.get(key);
    return s ? toTargetState(s.spec, s.session.snapshot()) : undefined;
  };
  const emit: EmitFn = (name, ...args) => {
    options.emit(name, ...args);
    const target = (args[0] as { target?: string }).target;
    if (CHANGES_STATE.has(name) && target !== undefined) {
      const changed = state(target);
      if (changed) options.emit('target.changed', changed);
    }
  };
  for (const target of options.targets) {
    const key = targetKey(target);
    if (sessions.has(key)) {
      options.log.warn({ target: key }, 'target given twice; one session runs for it');
      continue;
    }
    const { targets: _targets, ...common } = options;
    sessions.set(key, { spec: target, session: new Session<H>({ ...common, emit, target }) });
  }
  const detachers = new Set<() => void>();
  let stopped = false;

  const manager: SessionManager = {
    start(present, seenAt = options.clock.monotonic()) {
      for (const { session } of sessions.values()) session.start(present, seenAt);
    },
    deviceAdded(device, seenAt = options.clock.monotonic()) {
      if (stopped) return;
      for (const { session } of sessions.values()) session.deviceAdded(device, seenAt);
    },
    deviceRemoved(device) {
      if (stopped) return;
      for (const { session } of sessions.values()) session.deviceRemoved(device);
    },
    attach(bus) {
      const onAdded = (e: Added) => manager.deviceAdded(e.device);
      const onRemoved = (e: Removed) => manager.deviceRemoved(e.device);
      bus.on('device.added', onAdded);
      bus.on('device.removed', onRemoved);
      // A target named by its serial matches once the serial is known (candidates ignore a repeat).
      bus.on('device.identified', onAdded);
      const detach = () => {
        bus.off('device.added', onAdded);
        bus.off('device.removed', onRemoved);
        bus.off('device.identified', onAdded);
        detachers.delete(detach);
      };
      detachers.add(detach);
      return detach;
    },
    snapshot: () =>
      [...sessions.values()].map(({ spec, session }) => toTargetState(spec, session.snapshot())),
    get: state,
    restart: (target) => (stopped ? false : (sessions.get(target)?.session.restart() ?? false)),
    async stop() {
      stopped = true;
      for (const detach of [...detachers]) detach();
      await Promise.all([...sessions.values()].map(({ session }) => session.stop()));
    },
  };
  return manager;
}
