/**
 * The hardware seam (habit 2). Everything above src/usb sees plain data and the DeviceSource port; only
 * src/usb/sources/* import the `usb` package or touch /sys and /dev.
 */

/** Detection paths. `uevent` is the kernel NETLINK_KOBJECT_UEVENT source (issue 7). */
export type SourceName = 'devfs' | 'sysfs' | 'nusb' | 'uevent';

/**
 * One USB device as far as a source could tell. bus+address identify a device *instance* while it is
 * plugged in (the kernel gives a new address on every replug); `key` identifies the physical device across
 * replugs: its serial when present, else its port path.
 */
export interface UsbDevice {
  /** Stable key: `serial:<serial>` when a serial is known, else `port:<portPath>`, else `addr:<bus>-<address>`. */
  key: string;
  /** 4-digit lowercase hex. */
  vid: string;
  pid: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  /** Bus number (1..). */
  bus: number;
  /** Device address on the bus (devnum, 1..127). */
  address: number;
  /** sysfs port path, e.g. `1-1.4`. */
  portPath?: string;
  /** Speed as sysfs reports it, in Mbit/s: '1.5', '12', '480', '5000', ... */
  speed?: string;
  /** bcdDevice as 4-digit hex, device class as 2-digit hex (from the descriptor). */
  bcdDevice?: string;
  deviceClass?: string;
  /** usbfs node, e.g. `/dev/bus/usb/001/004` (under the configured devfs root). */
  devNode?: string;
}

/** What a source reports. `at` is the injected clock's monotonic ms when the source noticed. */
export type SourceEvent =
  | { type: 'added'; source: SourceName; at: number; device: UsbDevice }
  | {
      type: 'removed';
      source: SourceName;
      at: number;
      device: Pick<UsbDevice, 'bus' | 'address'> & Partial<UsbDevice>;
    };

export type SourceStatus =
  | { state: 'starting' }
  | { state: 'active' }
  /** Not usable here (no USB bus, no udev, no permission); `reason` is one line for the user. */
  | { state: 'unavailable'; reason: string; code: string };

export interface SourceListener {
  event(ev: SourceEvent): void;
  status(status: SourceStatus): void;
}

/**
 * A detection source. start() must never throw or reject because the host lacks something: it reports
 * `unavailable` via the listener and keeps trying (e.g. a USB bus appearing later). stop() releases every
 * watcher, timer and handle it holds, and nothing is emitted after it resolves. Devices present at start
 * come as `added` events; the port has no listing call (the watcher merges what the events say:
 * test/contracts/device-source.test.ts holds every source to this).
 */
export interface DeviceSource {
  readonly name: SourceName;
  start(listener: SourceListener): Promise<void>;
  stop(): Promise<void>;
  /**
   * Re-lists now, when the source has a listing of its own (a `rescan` request, issue 18), and reports
   * what changed as events; resolves when that listing ended, rejects when the source cannot list now.
   */
  rescan?(): Promise<void>;
}

/** Instance identity while plugged: bus and address. */
export function instanceId(d: Pick<UsbDevice, 'bus' | 'address'>): string {
  return `${d.bus}-${d.address}`;
}

export function deviceKey(d: Pick<UsbDevice, 'serial' | 'portPath' | 'bus' | 'address'>): string {
  if (d.serial) return `serial:${d.serial}`;
  if (d.portPath) return `port:${d.portPath}`;
  return `addr:${d.bus}-${d.address}`;
}
