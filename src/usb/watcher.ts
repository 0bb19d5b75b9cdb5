/**
 * Merges N detection sources into one de-duplicated stream (DESIGN "Detection: never trust one path").
 * A device instance is bus+address (a replug gets a new address). The first source to see an instance
 * emits `device.added`; later sources are recorded with their delay, and after the settle window a
 * `device.detection` report says who saw it, how late, and which active sources missed it. Same for
 * removal. Per-source counters feed the health topic.
 *
 * Sources disagree in time: the sysfs rescan can still see an entry the devfs source already reported
 * gone (the kernel deletes the node before the sysfs entry, drivers/base/core.c device_del), and after
 * 126 replugs an address comes back. So every source's claims are tracked per instance generation: a
 * claim left over from a previous instance is "stale" and never adds or removes the current one.
 */
import { EventEmitter } from 'node:events';
import { ErrorCodes } from '../errors.js';
import { type Clock, systemClock, type TimerHandle } from '../util/clock.js';
import type { DetectionReport, UsbEvents } from './events.js';
import { stamp } from './stamps.js';
import {
  type DeviceSource,
  instanceId,
  type SourceEvent,
  type SourceName,
  type SourceStatus,
  type UsbDevice,
} from './types.js';
import { inBounds, type ValueNote, ValueNotes } from './value-notes.js';
import { merge, SourceCounters, type SourceStats } from './watcher-stats.js';

export type { SourceStats };

export type UsbBusState = { present: true } | { present: false; reason: string };

export interface WatcherEvents extends UsbEvents {
  /** Said once when every source is unavailable because there is no USB bus, and once when it appears. */
  'usb.bus': [UsbBusState];
}

export interface WatcherOptions {
  sources: DeviceSource[];
  clock?: Clock;
  /** How long to wait for the other sources before reporting detection; 3000 ms by default. */
  settleMs?: number;
  /** Called when a listener of ours throws: a broken listener must not break a source's loop. */
  onListenerError?: (err: unknown) => void;
  /**
   * Called once per device instance whose values were out of bounds (src/usb/bounds.ts): what was cut,
   * or why the device was ignored. Everything the watcher emits is bounded already.
   */
  onValueCut?: (note: ValueNote) => void;
}

export type { ValueNote };

interface Sighting {
  first: SourceName;
  firstAt: number;
  latency: Map<SourceName, number>;
  timer: TimerHandle | undefined;
  /**
   * Seen while a source was still starting: a device already present, listed by each source's first
   * scan. How far apart those scans land says nothing about detection, so such sightings stay out of the
   * per-source counters and get no detection report.
   */
  initial: boolean;
  /**
   * The detection report was made: sources still absent were counted missed. A sighting after that is
   * late (a rescan stamped at its start whose reads queued behind a loaded thread pool), not seen, or one
   * sighting would count twice (the storm's sysfs seen + missed = 2001 of 2000).
   */
  reported: boolean;
}

interface Instance {
  generation: number;
  views: Map<SourceName, UsbDevice>;
  device: UsbDevice;
  added: Sighting;
}

export class UsbWatcher extends EventEmitter<WatcherEvents> {
  private readonly sources: DeviceSource[];
  private readonly clock: Clock;
  private readonly settleMs: number;
  private readonly onListenerError: (err: unknown) => void;
  private readonly values: ValueNotes;
  private readonly instances = new Map<string, Instance>();
  /** Removals inside their settle window, by instance id, with the generation they ended. */
  private readonly removals = new Map<
    string,
    Sighting & { generation: number; device: UsbDevice; added: Sighting }
  >();
  /**
   * When each instance id was last removed (monotonic ms, the removing source's stamp) and which
   * generation that ended. Outlives the settle window: an add stamped before that removal is a view of
   * the instance that is gone (a rescan that listed it, then stalled past the window on a loaded host),
   * never a new instance; a new one can only be seen after it exists. One entry per bus+address, so
   * bounded by 127 per bus.
   */
  private readonly lastRemoved = new Map<string, { at: number; generation: number }>();
  /** What each source claims is present: instance id -> generation it belongs to. */
  private readonly claims = new Map<SourceName, Map<string, number>>();
  private readonly status = new Map<SourceName, SourceStatus>();
  private readonly counters = new SourceCounters();
  private readonly pendingTimers = new Set<TimerHandle>();
  private generation = 0;
  private bus: 'unknown' | 'present' | 'absent' = 'unknown';
  private running = false;

  constructor(options: WatcherOptions) {
    super();
    this.sources = options.sources;
    this.clock = options.clock ?? systemClock;
    this.settleMs = options.settleMs ?? 3000;
    this.onListenerError = options.onListenerError ?? (() => {});
    this.values = new ValueNotes(options.onValueCut ?? (() => {}), this.onListenerError);
    for (const s of this.sources) {
      this.claims.set(s.name, new Map());
      this.status.set(s.name, { state: 'starting' });
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await Promise.all(
      this.sources.map(async (source) => {
        try {
          await source.start({
            event: (ev) => this.onSourceEvent(ev),
            status: (st) => this.onSourceStatus(source.name, st),
          });
        } catch (err) {
          // The port says start() never throws; a source that does is unavailable, not fatal.
          const message = err instanceof Error ? err.message : String(err);
          this.onSourceStatus(source.name, {
            state: 'unavailable',
            code: ErrorCodes.SOURCE_UNAVAILABLE,
            reason: `${source.name} source failed to start: ${message}`,
          });
        }
      }),
    );
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await Promise.all(this.sources.map((s) => s.stop().catch(() => {})));
    for (const t of this.pendingTimers) this.clock.clearTimeout(t);
    this.pendingTimers.clear();
    this.instances.clear();
    this.removals.clear();
    this.lastRemoved.clear();
    for (const c of this.claims.values()) c.clear();
    this.bus = 'unknown';
  }

  /** Devices present now, merged across sources, ordered by bus and address. */
  current(): UsbDevice[] {
    return [...this.instances.values()]
      .map((i) => ({ ...i.device }))
      .sort((a, b) => a.bus - b.bus || a.address - b.address);
  }

  /**
   * Calls `listener` after the device list changed (added, removed, or a serial learnt). Up to `exactUpTo` devices, on every change (an
   * observer sees each plug and unplug: issue 10). Above that, at most once per `intervalMs` with the
   * last state (trailing): a source listing 2,000 devices one by one made the agent publish the full list
   * 2,000 times, 800 MB of JSON (issue 12). Returns the function that removes the listener (its owner
   * calls it on stop).
   */
  onDevicesChanged(listener: () => void, options: { intervalMs: number; exactUpTo: number }): () => void {
    let timer: TimerHandle | undefined;
    const fire = () => {
      timer = undefined;
      try {
        listener();
      } catch (err) {
        this.onListenerError(err);
      }
    };
    const changed = () => {
      if (timer !== undefined) return; // a trailing call is due: it sees this change too
      if (this.instances.size <= options.exactUpTo) fire();
      else timer = this.clock.setTimeout(fire, options.intervalMs);
    };
    this.on('device.added', changed);
    this.on('device.removed', changed);
    // A serial learnt after the add changes the list too (the devfs source reports before the strings).
    this.on('device.identified', changed);
    return () => {
      this.off('device.added', changed);
      this.off('device.removed', changed);
      this.off('device.identified', changed);
      if (timer !== undefined) this.clock.clearTimeout(timer);
      timer = undefined;
    };
  }

  /**
   * Every source that can re-list does so now; resolves when all ended with the names of those that did
   * (issue 18). A source whose rescan rejects (it cannot list now: no bus, package not loaded) is left out,
   * so the answer names only sources that re-listed.
   */
  async rescan(): Promise<string[]> {
    const able = this.sources.filter((s) => typeof s.rescan === 'function');
    const results = await Promise.allSettled(able.map((s) => s.rescan?.()));
    return able.filter((_s, i) => results[i]?.status === 'fulfilled').map((s) => s.name);
  }

  /** Per-source counters for the health topic. */
  stats(): Partial<Record<SourceName, SourceStats>> {
    return this.counters.snapshot(
      this.sources.map((x) => x.name),
      (n) => this.status.get(n)?.state ?? 'starting',
    );
  }

  /** Last status each source reported. */
  sourceStatus(): Partial<Record<SourceName, SourceStatus>> {
    return Object.fromEntries(this.status);
  }

  private safeEmit<K extends keyof WatcherEvents>(name: K, ...args: WatcherEvents[K]): void {
    try {
      (this.emit as (n: K, ...a: WatcherEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      this.onListenerError(err);
    }
  }

  private onSourceStatus(name: SourceName, status: SourceStatus): void {
    if (!this.running) return;
    this.status.set(name, status);
    this.safeEmit('source.status', { source: name, status });
    // The uevent source listens to the kernel, not to a bus: it stays active on a bus-less host, so it
    // has no say in whether a bus exists.
    const all = [...this.status].filter(([n]) => n !== 'uevent').map(([, s]) => s);
    if (all.length === 0 || all.some((s) => s.state === 'starting')) return;
    const noBus = all.find((s) => s.state === 'unavailable' && s.code === ErrorCodes.NO_USB_BUS);
    // sysfs is the kernel's own word on whether a bus exists. An empty /dev/bus/usb proves nothing:
    // `docker run -v /dev/bus/usb:/dev/bus/usb` creates that directory on a host that has no bus, and
    // devfs then watches it happily (active) while there is nothing to see.
    const sysfs = this.status.get('sysfs');
    const sysfsNoBus = sysfs?.state === 'unavailable' && sysfs.code === ErrorCodes.NO_USB_BUS;
    // Devices already seen outrank a sysfs rescan that has not caught up with a bus that just appeared.
    const absent =
      (sysfsNoBus && this.instances.size === 0) ||
      (all.every((s) => s.state === 'unavailable') && noBus !== undefined);
    if (absent && noBus?.state === 'unavailable') {
      if (this.bus !== 'absent') {
        this.bus = 'absent';
        this.safeEmit('usb.bus', { present: false, reason: noBus.reason });
      }
    } else if (!absent && all.some((s) => s.state === 'active') && this.bus === 'absent') {
      this.bus = 'present';
      this.safeEmit('usb.bus', { present: true });
    }
  }

  private onSourceEvent(ev: SourceEvent): void {
    if (!this.running) return;
    if (ev.type === 'added') {
      const device = this.values.check(ev.source, ev.device);
      if (device) this.onAdded(ev.source, ev.at, device);
    } else if (inBounds(ev.device)) {
      this.onRemoved(ev.source, ev.at, ev.device); // out of bounds was never added: nothing to remove
    }
  }

  private onAdded(source: SourceName, at: number, device: UsbDevice): void {
    const id = instanceId(device);
    const claims = this.claims.get(source);
    if (!claims) return;
    // A device seen is proof of a bus, even before sysfs's next rescan says so: the notice comes first.
    if (this.bus === 'absent') {
      this.bus = 'present';
      this.safeEmit('usb.bus', { present: true });
    }
    const live = this.instances.get(id);
    if (live) {
      claims.set(id, live.generation);
      live.views.set(source, device);
      const before = live.device;
      live.device = merge(live.views);
      this.recordSighting(live.added, source, at);
      if (before.serial === undefined && live.device.serial !== undefined) {
        stamp('identified', live.device, undefined, source);
        this.safeEmit('device.identified', { device: { ...live.device }, source });
      }
      return;
    }
    const removal = this.removals.get(id);
    if (removal && !removal.latency.has(source)) {
      // This source never saw the last instance go: it is late news of that instance, not a new one.
      claims.set(id, removal.generation);
      this.recordSighting(removal.added, source, at);
      return;
    }
    const gone = this.lastRemoved.get(id);
    if (gone && at < gone.at) {
      // Older than the removal already reported: its own removal will find this claim stale.
      claims.set(id, gone.generation);
      this.counters.of(source).late++;
      return;
    }
    this.lastRemoved.delete(id);
    const generation = ++this.generation;
    // Older claims on this id by other sources carry an older generation: they are stale from now on.
    claims.set(id, generation);
    const views = new Map([[source, device]]);
    const merged = merge(views);
    const added = this.newSighting(source, at);
    const instance: Instance = { generation, views, device: merged, added };
    this.instances.set(id, instance);
    if (!added.initial) {
      this.counters.of(source).seen++;
      this.counters.of(source).first++;
    }
    added.timer = this.after(() => this.report('added', instance.device, added));
    stamp('added', merged, undefined, source);
    this.safeEmit('device.added', { device: { ...merged }, source });
  }

  private onRemoved(source: SourceName, at: number, device: Pick<UsbDevice, 'bus' | 'address'>): void {
    const id = instanceId(device);
    const claims = this.claims.get(source);
    if (!claims) return;
    const claimed = claims.get(id);
    claims.delete(id);
    const live = this.instances.get(id);
    if (live && claimed === live.generation) {
      this.instances.delete(id);
      this.lastRemoved.set(id, { at, generation: live.generation });
      const removal = {
        ...this.newSighting(source, at),
        generation: live.generation,
        device: live.device,
        added: live.added,
      };
      this.counters.of(source).seen++;
      this.counters.of(source).first++;
      const previous = this.removals.get(id);
      if (previous?.timer !== undefined) this.clearTimer(previous.timer);
      // The same instance id removed again before the last removal's report: close that window now. A
      // dropped timer lost its report: addresses come back after 126 replugs, and when a storm outruns the
      // settle window (a busy host, late timers) the storm test counted 1974-1999 of 2000 reports.
      if (previous && !previous.reported) this.report('removed', previous.device, previous);
      this.removals.set(id, removal);
      removal.timer = this.after(() => {
        if (this.removals.get(id) === removal) this.removals.delete(id);
        this.report('removed', removal.device, removal);
      });
      this.safeEmit('device.removed', { device: { ...live.device }, source });
      return;
    }
    const removal = this.removals.get(id);
    if (removal && claimed === removal.generation) {
      this.recordSighting(removal, source, at);
      return;
    }
    if (claimed !== undefined) this.counters.of(source).stale++;
  }

  private newSighting(first: SourceName, at: number): Sighting {
    const initial = [...this.status.values()].some((st) => st.state === 'starting');
    return {
      first,
      firstAt: at,
      latency: new Map([[first, 0]]),
      timer: undefined,
      initial,
      reported: false,
    };
  }

  private recordSighting(s: Sighting, source: SourceName, at: number): void {
    if (s.latency.has(source)) return;
    if (s.reported) {
      if (!s.initial) this.counters.of(source).late++;
      return;
    }
    const ms = Math.max(0, at - s.firstAt);
    s.latency.set(source, ms);
    if (!s.initial) this.counters.sighting(source, ms);
  }

  private report(kind: 'added' | 'removed', device: UsbDevice, s: Sighting): void {
    s.reported = true;
    if (s.initial) return;
    const missedBy = [...this.status]
      .filter(([name, st]) => st.state === 'active' && !s.latency.has(name))
      .map(([name]) => name);
    for (const name of missedBy) this.counters.of(name).missed++;
    const report: DetectionReport = {
      kind,
      key: device.key,
      vid: device.vid,
      pid: device.pid,
      bus: device.bus,
      address: device.address,
      first: s.first,
      latencyMs: Object.fromEntries([...s.latency].map(([n, ms]) => [n, Math.round(ms * 10) / 10])),
      missedBy,
    };
    this.safeEmit('device.detection', report);
  }

  private after(fn: () => void): TimerHandle {
    const handle: TimerHandle = this.clock.setTimeout(() => {
      this.pendingTimers.delete(handle);
      if (this.running) fn();
    }, this.settleMs);
    this.pendingTimers.add(handle);
    return handle;
  }

  private clearTimer(handle: TimerHandle): void {
    this.clock.clearTimeout(handle);
    this.pendingTimers.delete(handle);
  }
}
