/**
 * One Session per target (`--target 1209:0001 --target 0403:6001:SERIAL`), fed from one device stream.
 * The manager owns the listeners it adds to the agent's bus and removes them on stop (STYLE habit 4), and
 * stop() resolves only when every session has closed its device: the SIGINT path awaits it.
 */
import type { AgentEvents } from '../events.js';
import type { Logger } from '../log.js';
import { type TargetSpec, targetKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import type { Clock } from '../util/clock.js';
import type { BackoffOptions } from './backoff.js';
import type { SessionDriver } from './drivers/types.js';
import type { EmitFn, SessionTimeouts, TargetSnapshot } from './options.js';
import { Session } from './session.js';

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

type Added = AgentEvents['device.added'][0];
type Removed = AgentEvents['device.removed'][0];

/** The part of the agent's event bus the manager listens to (an EventEmitter<AgentEvents> fits). */
export interface DeviceBus {
  on(event: 'device.added', listener: (e: Added) => void): unknown;
  on(event: 'device.removed', listener: (e: Removed) => void): unknown;
  off(event: 'device.added', listener: (e: Added) => void): unknown;
  off(event: 'device.removed', listener: (e: Removed) => void): unknown;
}

export interface SessionManager {
  /** Feeds the current device list (e.g. the watcher's `current()`); seenAt defaults to now. */
  start(present: readonly UsbDevice[], seenAt?: number): void;
  deviceAdded(device: UsbDevice, seenAt?: number): void;
  deviceRemoved(device: Pick<UsbDevice, 'bus' | 'address'>): void;
  /** Listens to device.added/device.removed on `bus`; returns the detach function (stop() also detaches). */
  attach(bus: DeviceBus): () => void;
  /** One entry per target, in the order given, for `target/<key>/state`. */
  snapshot(): TargetSnapshot[];
  get(target: string): TargetSnapshot | undefined;
  /** Closes every session (aborting stuck drivers, bounded by the close timeout) and detaches. */
  stop(): Promise<void>;
}

export function createSessionManager<H>(options: SessionManagerOptions<H>): SessionManager {
  const sessions = new Map<string, Session<H>>();
  for (const target of options.targets) {
    const key = targetKey(target);
    if (sessions.has(key)) {
      options.log.warn({ target: key }, 'target given twice; one session runs for it');
      continue;
    }
    const { targets: _targets, ...common } = options;
    sessions.set(key, new Session<H>({ ...common, target }));
  }
  const detachers = new Set<() => void>();
  let stopped = false;

  const manager: SessionManager = {
    start(present, seenAt = options.clock.monotonic()) {
      for (const s of sessions.values()) s.start(present, seenAt);
    },
    deviceAdded(device, seenAt = options.clock.monotonic()) {
      if (stopped) return;
      for (const s of sessions.values()) s.deviceAdded(device, seenAt);
    },
    deviceRemoved(device) {
      if (stopped) return;
      for (const s of sessions.values()) s.deviceRemoved(device);
    },
    attach(bus) {
      const onAdded = (e: Added) => manager.deviceAdded(e.device);
      const onRemoved = (e: Removed) => manager.deviceRemoved(e.device);
      bus.on('device.added', onAdded);
      bus.on('device.removed', onRemoved);
      const detach = () => {
        bus.off('device.added', onAdded);
        bus.off('device.removed', onRemoved);
        detachers.delete(detach);
      };
      detachers.add(detach);
      return detach;
    },
    snapshot: () => [...sessions.values()].map((s) => s.snapshot()),
    get: (target) => sessions.get(target)?.snapshot(),
    async stop() {
      stopped = true;
      for (const detach of [...detachers]) detach();
      await Promise.all([...sessions.values()].map((s) => s.stop()));
    },
  };
  return manager;
}
