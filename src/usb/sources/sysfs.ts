/**
 * The sysfs source: scans `<sysfsRoot>/bus/usb/devices` and diffs against the previous scan, on a
 * periodic rescan. It is the slowest path but the one that works everywhere: sysfs is readable in every
 * container, needs no udev and no netlink. Polling, not inotify, on purpose: sysfs (kernfs) does not emit
 * inotify events for entries the kernel creates, so a watch would only ever fire on fake trees.
 */

import { readdir } from 'node:fs/promises';
import { ErrorCodes } from '../../errors.js';
import { type Clock, systemClock, type TimerHandle } from '../../util/clock.js';
import { sharedUsbFs, type UsbFs, within } from '../bounded-io.js';
import {
  hasUsbBus,
  isDeviceEntry,
  noBusReason,
  readInstanceResult,
  readSysfsDevice,
  sysfsDevicesDir,
} from '../sysfs-read.js';
import type { DeviceSource, SourceListener, SourceStatus, UsbDevice } from '../types.js';

export interface SysfsSourceOptions {
  sysfsRoot: string;
  /** Used to fill `devNode`; omitted when unknown. */
  devfsRoot?: string;
  /** Rescan period; 1000 ms by default. */
  intervalMs?: number;
  clock?: Clock;
  /** The bounded reader (src/usb/bounded-io.ts); the process-wide one by default. */
  fs?: UsbFs;
  /** stop() waits at most this long for a scan in flight; 1000 ms by default. */
  stopTimeoutMs?: number;
}

interface Known {
  device: UsbDevice;
}

export class SysfsSource implements DeviceSource {
  readonly name = 'sysfs' as const;
  private readonly options: SysfsSourceOptions;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly read: { fs: UsbFs };
  private listener: SourceListener | undefined;
  private timer: TimerHandle | undefined;
  private scanning: Promise<void> | undefined;
  private nextScan: Promise<void> | undefined;
  /** By sysfs entry name (port path). */
  private known = new Map<string, Known>();
  private lastStatus: SourceStatus['state'] | undefined;

  constructor(options: SysfsSourceOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? 1000;
    this.read = { fs: options.fs ?? sharedUsbFs };
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    listener.status({ state: 'starting' });
    await this.scanNow();
    this.schedule();
  }

  async stop(): Promise<void> {
    const wasRunning = this.listener !== undefined;
    this.listener = undefined;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // Bounded (issue 12): a scan whose reads the kernel holds is abandoned; it reports nothing after this.
    await within(
      this.clock,
      this.nextScan ?? this.scanning ?? Promise.resolve(),
      this.options.stopTimeoutMs ?? 1000,
    );
    if (wasRunning) this.known.clear();
    this.lastStatus = undefined;
  }

  async list(): Promise<UsbDevice[]> {
    const dir = sysfsDevicesDir(this.options.sysfsRoot);
    let names: string[];
    try {
      names = (await readdir(dir)).filter(isDeviceEntry);
    } catch {
      return [];
    }
    const devices = await Promise.all(
      names.map((n) => readSysfsDevice(dir, n, this.options.devfsRoot, this.read)),
    );
    return devices.filter((d): d is UsbDevice => d !== undefined);
  }

  /**
   * A scan that starts after this call (also what the periodic timer runs). Scans never overlap: while one
   * runs, callers share the next one. Joining the scan in flight instead could return a scan that listed
   * the tree before the caller changed it (a race seen in the no-bus test under load).
   */
  scanNow(): Promise<void> {
    if (!this.scanning) {
      this.scanning = this.scan()
        .catch(() => {
          // A scan failing halfway (tree vanishing under us) is retried by the next one.
        })
        .finally(() => {
          this.scanning = undefined;
        });
      return this.scanning;
    }
    this.nextScan ??= this.scanning.then(() => {
      this.nextScan = undefined;
      return this.scanNow();
    });
    return this.nextScan;
  }

  rescan(): Promise<void> {
    return this.scanNow();
  }

  private schedule(): void {
    if (!this.listener) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.scanNow().then(() => this.schedule());
    }, this.intervalMs);
  }

  private setStatus(status: SourceStatus): void {
    if (status.state === this.lastStatus) return;
    this.lastStatus = status.state;
    this.listener?.status(status);
  }

  private async scan(): Promise<void> {
    const { sysfsRoot, devfsRoot } = this.options;
    const dir = sysfsDevicesDir(sysfsRoot);
    let names: string[];
    try {
      names = (await readdir(dir)).filter(isDeviceEntry);
    } catch {
      if (!this.listener) return;
      if (!(await hasUsbBus(sysfsRoot))) {
        this.emitRemovals(new Set());
        this.setStatus({ state: 'unavailable', code: ErrorCodes.NO_USB_BUS, reason: noBusReason(sysfsRoot) });
      }
      return;
    }
    if (!this.listener) return;
    this.setStatus({ state: 'active' });
    const at = this.clock.monotonic();
    // Two cheap reads per entry tell a device we know from a replug at the same port (new devnum).
    const seen = new Set<string>();
    const fresh: string[] = [];
    await Promise.all(
      names.map(async (name) => {
        const prev = this.known.get(name);
        if (!prev) {
          fresh.push(name);
          return;
        }
        const inst = await readInstanceResult(dir, name, this.read);
        // Busy is not gone: the entry is still listed, and a real unplug removes it from the listing.
        if (inst === 'busy') {
          seen.add(name);
          return;
        }
        if (!inst) return; // vanished mid-scan: removed below
        if (inst.bus === prev.device.bus && inst.address === prev.device.address) seen.add(name);
        else fresh.push(name); // replugged between scans: the old instance is removed, the new one added
      }),
    );
    if (!this.listener) return;
    this.emitRemovals(seen, at);
    const added = await Promise.all(fresh.map((n) => readSysfsDevice(dir, n, devfsRoot, this.read)));
    if (!this.listener) return;
    const ordered = added
      .filter((d): d is UsbDevice => d !== undefined)
      .sort((x, y) => x.address - y.address);
    for (const device of ordered) {
      // Incomplete entries (attributes not written yet) are left for the next scan.
      this.known.set(device.portPath ?? `${device.bus}-${device.address}`, { device });
      this.listener.event({ type: 'added', source: 'sysfs', at, device: { ...device } });
    }
  }

  private emitRemovals(keep: Set<string>, at = this.clock.monotonic()): void {
    for (const [name, k] of this.known) {
      if (keep.has(name)) continue;
      this.known.delete(name);
      this.listener?.event({ type: 'removed', source: 'sysfs', at, device: { ...k.device } });
    }
  }
}
