/**
 * The `usb` v3 source (a Rust rewrite on the nusb crate). getDevices() re-reads /sys/bus/usb/devices on
 * every call, so listings are fresh even in containers; connect/disconnect come from udev's netlink
 * broadcasts (group 2), so they only fire where udevd runs in the same network namespace — never in a
 * container with its own netns (moby/moby#35359). The watcher's `missedBy` makes that visible.
 *
 * Hazards this file exists to contain:
 * - The package is imported lazily, here only: a missing or broken native binary (armv6, musl mismatch)
 *   makes this source `unavailable` instead of breaking startup.
 * - usb@3.1.0 with no /sys/bus/usb: getDevices() rejects with errno 2, and adding a `connect` listener
 *   starts an un-awaited nativeGetDevices() inside the package whose rejection is unhandled and kills
 *   Node 20. So listeners are added only after checking `<sysfsRoot>/bus/usb` exists, and removed when
 *   it disappears. Every call into the package is wrapped.
 * - It cannot be pointed at a fake sysfs root: it always reads the real /sys. The agent disables this
 *   source when --sysfs-root is not `/sys` (its view would not match the other sources').
 */
import { ErrorCodes, ReplugError } from '../../errors.js';
import { type Clock, systemClock, type TimerHandle } from '../../util/clock.js';
import { hex4 } from '../ids.js';
import { devNodePath, hasUsbBus, noBusReason } from '../sysfs-read.js';
import {
  type DeviceSource,
  deviceKey,
  instanceId,
  type SourceListener,
  type SourceStatus,
  type UsbDevice,
} from '../types.js';

/** The few fields of a usb v3 UsbDevice this source reads. */
export interface NusbDevice {
  vendorId: number;
  productId: number;
  bus: string;
  address: number;
  ports?: number[];
  speed?: string;
  deviceClass?: number;
  deviceVersionMajor?: number;
  deviceVersionMinor?: number;
  deviceVersionSubminor?: number;
  readonly serialNumber?: string | null;
  readonly manufacturerName?: string | null;
  readonly productName?: string | null;
}

export type NusbListener = (ev: { device: NusbDevice }) => void;

/** The slice of usb v3's `usb` (WebUSB) object this source calls: injected so tests need no hardware. */
export interface UsbModule {
  getDevices(): Promise<NusbDevice[]>;
  addEventListener(type: 'connect' | 'disconnect', listener: NusbListener): void;
  removeEventListener(type: 'connect' | 'disconnect', listener: NusbListener): void;
}

export async function loadUsbModule(): Promise<UsbModule> {
  const mod = (await import('usb')) as unknown as { usb?: UsbModule; default?: { usb?: UsbModule } };
  const usb = mod.usb ?? mod.default?.usb;
  if (!usb) throw new Error('the usb package has no `usb` export (expected usb@3)');
  return usb;
}

export interface NusbSourceOptions {
  /** Checked for `bus/usb` before touching the package; `/sys` in production. */
  sysfsRoot?: string;
  /** Fills `devNode`. */
  devfsRoot?: string;
  load?: () => Promise<UsbModule>;
  clock?: Clock;
  /** How often to check whether the bus appeared or vanished; 1000 ms by default. */
  busPollMs?: number;
}

const SPEED_MBPS: Record<string, string> = {
  low: '1.5',
  full: '12',
  high: '480',
  super: '5000',
  superPlus: '10000',
};

const bcd2 = (n: number) => ((Math.floor(n / 10) % 10) << 4) | (n % 10);

export function fromNusb(d: NusbDevice, devfsRoot?: string): UsbDevice {
  const bus = Number.parseInt(d.bus, 10);
  const device: UsbDevice = {
    key: '',
    vid: hex4(d.vendorId),
    pid: hex4(d.productId),
    bus,
    address: d.address,
  };
  if (d.ports && d.ports.length > 0) device.portPath = `${bus}-${d.ports.join('.')}`;
  if (d.speed && SPEED_MBPS[d.speed]) device.speed = SPEED_MBPS[d.speed];
  if (d.deviceVersionMajor !== undefined) {
    // WebUSB splits bcdDevice 0xJJMN into major JJ (decimal of the BCD), minor M, subminor N.
    const minor = (d.deviceVersionMinor ?? 0) & 0xf;
    const sub = (d.deviceVersionSubminor ?? 0) & 0xf;
    device.bcdDevice = hex4((bcd2(d.deviceVersionMajor) << 8) | (minor << 4) | sub);
  }
  if (d.deviceClass !== undefined) device.deviceClass = d.deviceClass.toString(16).padStart(2, '0');
  const strings = { serial: d.serialNumber, manufacturer: d.manufacturerName, product: d.productName };
  for (const [k, v] of Object.entries(strings)) if (v) device[k as keyof typeof strings] = v;
  if (devfsRoot !== undefined) device.devNode = devNodePath(devfsRoot, bus, d.address);
  device.key = deviceKey(device);
  return device;
}

export class NusbSource implements DeviceSource {
  readonly name = 'nusb' as const;
  private readonly sysfsRoot: string;
  private readonly options: NusbSourceOptions;
  private readonly clock: Clock;
  private listener: SourceListener | undefined;
  private usb: UsbModule | undefined;
  private listening = false;
  private timer: TimerHandle | undefined;
  private checking: Promise<void> | undefined;
  private lastStatus: string | undefined;
  private readonly known = new Map<string, UsbDevice>();
  /** Instances the events reported while a re-listing was in flight: that listing may predate them. */
  private touched: Set<string> | undefined;
  private relisting: Promise<void> | undefined;
  private nextRelist: Promise<void> | undefined;
  private readonly onConnect: NusbListener = (ev) => this.report('added', ev.device);
  private readonly onDisconnect: NusbListener = (ev) => this.report('removed', ev.device);

  constructor(options: NusbSourceOptions = {}) {
    this.options = options;
    this.sysfsRoot = options.sysfsRoot ?? '/sys';
    this.clock = options.clock ?? systemClock;
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    listener.status({ state: 'starting' });
    try {
      this.usb = await (this.options.load ?? loadUsbModule)();
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
      this.setStatus({
        state: 'unavailable',
        code: ErrorCodes.SOURCE_UNAVAILABLE,
        reason: `the usb package could not be loaded: ${message}`,
      });
      return; // a broken binary does not heal itself: no retry loop
    }
    this.checking = this.check();
    await this.checking;
  }

  /** Resolves when the bus check in flight (if any) is done: tests driving a fake clock await it. */
  async idle(): Promise<void> {
    await this.checking;
  }

  async stop(): Promise<void> {
    this.listener = undefined;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // A bus check may be reading sysfs right now; once that read is done it would start listening on the
    // package again after stop. Wait for it, then release (issue 13, test/contracts/device-source.test.ts).
    await this.checking?.catch(() => undefined);
    this.unlisten();
    this.known.clear();
    this.lastStatus = undefined;
  }

  async list(): Promise<UsbDevice[]> {
    if (!this.usb || !(await hasUsbBus(this.sysfsRoot))) return [];
    try {
      return (await this.usb.getDevices()).map((d) => fromNusb(d, this.options.devfsRoot));
    } catch {
      return [];
    }
  }

  /**
   * Lists again through getDevices() (issue 18's `rescan`) and reports what changed against what this
   * source knew: an add for each instance it had not reported (a connect event lost, or no udevd in this
   * namespace to send one), a removal for each it had that is no longer listed. Rejects when it cannot list
   * (the package did not load, or getDevices failed), so a rescan answer does not name it; without a bus
   * it resolves, having found nothing, as devfs and sysfs do. Listings never overlap: a call while one runs shares the next, which begins after this call.
   */
  rescan(): Promise<void> {
    if (!this.relisting) {
      this.relisting = this.relist().finally(() => {
        this.relisting = undefined;
      });
      return this.relisting;
    }
    this.nextRelist ??= this.relisting
      .catch(() => undefined)
      .then(() => {
        this.nextRelist = undefined;
        return this.rescan();
      });
    return this.nextRelist;
  }

  private async relist(): Promise<void> {
    const usb = this.usb;
    if (!this.listener || !usb) {
      throw new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, 'nusb cannot list: the usb package is not loaded');
    }
    if (!this.listening) {
      // No bus is a listing too (nothing there, as devfs and sysfs find then; the bus check removed what
      // was known). A bus without listeners means getDevices failed: the next bus check retries it.
      if (!(await hasUsbBus(this.sysfsRoot))) return;
      throw new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, 'nusb cannot list now: getDevices failed');
    }
    const touched = new Set<string>();
    this.touched = touched;
    let listed: UsbDevice[];
    try {
      const raw = await usb.getDevices();
      listed = raw.flatMap((d) => {
        try {
          return [fromNusb(d, this.options.devfsRoot)]; // getters call into native code: may throw
        } catch {
          return [];
        }
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, `nusb could not list devices: ${message}`);
    } finally {
      this.touched = undefined;
    }
    if (!this.listener) return;
    const present = new Set(listed.map((d) => instanceId(d)));
    for (const [id, device] of this.known) {
      if (present.has(id) || touched.has(id)) continue;
      this.known.delete(id);
      this.emit('removed', device);
    }
    for (const device of listed) {
      const id = instanceId(device);
      if (this.known.has(id) || touched.has(id)) continue;
      this.known.set(id, device);
      this.emit('added', device);
    }
  }

  /** Follows the bus: listen while it exists, stop listening (and report removals) when it goes. */
  private async check(): Promise<void> {
    if (!this.listener || !this.usb) return;
    if (await hasUsbBus(this.sysfsRoot)) {
      if (!this.listening) await this.begin();
    } else {
      this.unlisten();
      for (const device of this.known.values()) this.emit('removed', device);
      this.known.clear();
      this.setStatus({
        state: 'unavailable',
        code: ErrorCodes.NO_USB_BUS,
        reason: noBusReason(this.sysfsRoot),
      });
    }
    if (!this.listener) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.checking = this.check();
    }, this.options.busPollMs ?? 1000);
  }

  private async begin(): Promise<void> {
    const usb = this.usb;
    if (!usb || !this.listener) return; // stopped while the bus check read sysfs
    try {
      usb.addEventListener('connect', this.onConnect);
      usb.addEventListener('disconnect', this.onDisconnect);
      this.listening = true;
      const devices = await usb.getDevices();
      if (!this.listener) return;
      for (const d of devices) this.report('added', d);
      this.setStatus({ state: 'active' });
    } catch (err) {
      this.unlisten(); // retried on the next check
      const message = err instanceof Error ? err.message : String(err);
      this.setStatus({
        state: 'unavailable',
        code: ErrorCodes.SOURCE_UNAVAILABLE,
        reason: `the usb package failed to list devices: ${message}`,
      });
    }
  }

  private unlisten(): void {
    if (!this.listening || !this.usb) return;
    this.listening = false;
    try {
      this.usb.removeEventListener('connect', this.onConnect);
      this.usb.removeEventListener('disconnect', this.onDisconnect);
    } catch {
      // nothing more we can release
    }
  }

  private report(type: 'added' | 'removed', raw: NusbDevice): void {
    if (!this.listener) return;
    let device: UsbDevice;
    try {
      device = fromNusb(raw, this.options.devfsRoot); // getters call into native code: may throw
    } catch {
      return;
    }
    const id = instanceId(device);
    this.touched?.add(id);
    if (type === 'added') {
      if (this.known.has(id)) return;
      this.known.set(id, device);
    } else {
      device = this.known.get(id) ?? device;
      if (!this.known.delete(id)) return;
    }
    this.emit(type, device);
  }

  private emit(type: 'added' | 'removed', device: UsbDevice): void {
    this.listener?.event({ type, source: 'nusb', at: this.clock.monotonic(), device: { ...device } });
  }

  private setStatus(status: SourceStatus): void {
    const tag = status.state === 'unavailable' ? `${status.state}:${status.code}` : status.state;
    if (tag === this.lastStatus) return;
    this.lastStatus = tag;
    this.listener?.status(status);
  }
}
