/**
 * The agent's one typed bus (the zigbee2mqtt eventBus habit): sources' events come from the watcher, the
 * sessions emit theirs onto it, and the features listen. Every listener has an owner (a feature's name)
 * that removes all of its listeners at once on stop. A throwing listener never reaches the emitter (a
 * session's bookkeeping, the watcher's loop): it is logged once per owner and event until it works again.
 */
import type { AgentEvents } from '../events.js';
import type { Logger } from '../log.js';
import type { EmitFn, SessionBusEvents } from '../session/options.js';
import type { TargetEvents } from '../session/target-state.js';
import type { UsbWatcher, WatcherEvents } from '../usb/watcher.js';

export interface BusEvents extends AgentEvents, TargetEvents {
  'usb.bus': WatcherEvents['usb.bus'];
  /** Sources started and sessions fed the devices present: features publish their first state. */
  'agent.ready': [];
}

type Fn = (...args: never[]) => void;

export class Bus {
  private readonly owners = new Map<string, { event: keyof BusEvents; fn: Fn }[]>();
  private readonly listeners = new Map<keyof BusEvents, Set<{ owner: string; fn: Fn }>>();
  private readonly failing = new Set<string>();

  constructor(private readonly log: Logger) {}

  /** `first` puts the listener before the others of that event (the sessions: see devices()). */
  on<K extends keyof BusEvents>(
    owner: string,
    event: K,
    fn: (...args: BusEvents[K]) => void,
    first = false,
  ): void {
    const entry = { owner, fn: fn as unknown as Fn };
    const set = this.listeners.get(event) ?? new Set();
    this.listeners.set(event, first ? new Set([entry, ...set]) : set.add(entry));
    this.owners.set(owner, [...(this.owners.get(owner) ?? []), { event, fn: entry.fn }]);
  }

  /** Removes every listener `owner` added. */
  off(owner: string): void {
    for (const { event, fn } of this.owners.get(owner) ?? []) {
      const set = this.listeners.get(event);
      for (const entry of set ?? []) if (entry.owner === owner && entry.fn === fn) set?.delete(entry);
    }
    this.owners.delete(owner);
  }

  emit = <K extends keyof BusEvents>(event: K, ...args: BusEvents[K]): void => {
    for (const { owner, fn } of [...(this.listeners.get(event) ?? [])]) {
      const key = `${owner}:${String(event)}`;
      try {
        (fn as unknown as (...a: BusEvents[K]) => void)(...args);
        this.failing.delete(key);
      } catch (err) {
        if (!this.failing.has(key))
          this.log.error({ err, owner, event }, `${owner} failed on ${String(event)}`);
        this.failing.add(key);
      }
    }
  };

  count(event: keyof BusEvents): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /**
   * The sink the session manager emits into. Its events are a part of the bus's (checked below), so the
   * widening is sound; TypeScript cannot relate the two generic signatures itself.
   */
  sessionSink(): EmitFn {
    return this.emit as EmitFn;
  }

  /**
   * The device half of the bus as the session manager's attach() wants it (owner `sessions`). The sessions
   * hear of a device before the features do: a target's open is what the user waits for, and the features'
   * reports of the same event (publishing, logging) cost tens of ms on a slow CPU (the lab's `equal`
   * scenario: 36 ms p50 from device.added to the session on a TCG guest). The reports still go out in the
   * same tick.
   */
  devices(owner: string) {
    const bus = this;
    return {
      on<K extends 'device.added' | 'device.removed' | 'device.identified'>(
        event: K,
        fn: (...a: BusEvents[K]) => void,
      ) {
        bus.on(owner, event, fn, true);
      },
      off(_event: 'device.added' | 'device.removed' | 'device.identified', _fn: unknown) {
        bus.off(owner);
      },
    };
  }

  /**
   * The watcher's events onto the bus, one typed line each (no casts); returns the function removing them.
   * The watcher stays an EventEmitter of its own: this is where its events join the agent's.
   */
  follow(watcher: UsbWatcher): () => void {
    const added = (e: BusEvents['device.added'][0]) => this.emit('device.added', e);
    const removed = (e: BusEvents['device.removed'][0]) => this.emit('device.removed', e);
    const identified = (e: BusEvents['device.identified'][0]) => this.emit('device.identified', e);
    const detection = (e: BusEvents['device.detection'][0]) => this.emit('device.detection', e);
    const status = (e: BusEvents['source.status'][0]) => this.emit('source.status', e);
    const usbBus = (e: BusEvents['usb.bus'][0]) => this.emit('usb.bus', e);
    watcher.on('device.added', added);
    watcher.on('device.removed', removed);
    watcher.on('device.identified', identified);
    watcher.on('device.detection', detection);
    watcher.on('source.status', status);
    watcher.on('usb.bus', usbBus);
    return () => {
      watcher.off('device.added', added);
      watcher.off('device.removed', removed);
      watcher.off('device.identified', identified);
      watcher.off('device.detection', detection);
      watcher.off('source.status', status);
      watcher.off('usb.bus', usbBus);
    };
  }
}

// Fails to compile if a session event is not a bus event with the same payload.
const sessionEventsFit: SessionBusEvents extends Pick<BusEvents, keyof SessionBusEvents> ? true : never =
  true;
void sessionEventsFit;
