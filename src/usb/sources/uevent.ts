/**
 * The fourth detection source: kernel uevents from a NETLINK_KOBJECT_UEVENT socket, multicast group 1.
 *
 * The kernel broadcasts `ACTION@DEVPATH\0KEY=VALUE\0...` (lib/kobject_uevent.c `kobject_uevent_env`) the
 * moment it registers a device, before udevd runs, so it is the fastest source, and unlike udev's group 2 it
 * reaches other network namespaces: lib/kobject_uevent.c `uevent_net_init` adds a namespace's uevent socket
 * to `uevent_sock_list` only "if (sock_net(ue_sk->sk)->user_ns == &init_user_ns)" ("Restrict uevents to
 * initial user namespace", Linux 4.18+). Rootful containers get them; rootless ones and userns-remap do not.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, errnoOf, isReplugError } from '../../errors.js';
import { type Clock, systemClock } from '../../util/clock.js';
import { within } from '../bounded-io.js';
import { deviceLock } from '../devfs-read.js';
import {
  type KernelUevent,
  parseKernelUevent,
  type UsbUeventIdentity,
  usbIdentity,
} from '../kernel/uevent.js';
import { GROUP_KERNEL, type NetlinkSocket, type NetlinkSocketFactory, openUeventSocket } from '../netlink.js';
import { readAttrResult } from '../sysfs-read.js';
import {
  type DeviceSource,
  deviceKey,
  instanceId,
  type SourceListener,
  type SourceName,
  type UsbDevice,
} from '../types.js';

/**
 * Why kernel uevents cannot arrive here, or undefined when they can. The uevent socket of a network
 * namespace gets hardware uevents only when that namespace belongs to the initial user namespace (see the
 * file comment); the initial user namespace's /proc/self/uid_map is the identity map `0 0 4294967295`.
 */
export async function ueventBlockedReason(procRoot = '/proc'): Promise<string | undefined> {
  let map: string;
  try {
    map = await readFile(join(procRoot, 'self', 'uid_map'), 'utf8');
  } catch {
    return undefined; // no /proc or no user namespaces (CONFIG_USER_NS=n): nothing says they are blocked
  }
  const lines = map.trim().split('\n');
  const fields = lines[0]?.trim().split(/\s+/) ?? [];
  if (lines.length === 1 && fields[0] === '0' && fields[1] === '0' && fields[2] === '4294967295') {
    return undefined;
  }
  return 'this process runs in a user namespace (rootless container or userns-remap): the kernel sends uevents only to network namespaces of the initial user namespace';
}

/** A string attribute through the bounded reader (issue 12): never blocks on a FIFO or a held lock. */
async function readAttr(dir: string, name: string, lock: string): Promise<string | undefined> {
  const r = await readAttrResult(dir, name, { lock });
  const v = r.kind === 'value' ? r.text.trim() : '';
  return v.length > 0 ? v : undefined;
}

export interface UeventSourceOptions {
  /** Opens the netlink socket (a fake in tests). */
  openSocket?: NetlinkSocketFactory;
  clock?: Pick<Clock, 'monotonic'>;
  /** Where /sys is (strings are read from `<sysfsRoot><DEVPATH>/`); '/sys' by default. */
  sysfsRoot?: string;
  /** Where /dev is (devNode = `<devRoot>/<DEVNAME>`); '/dev' by default. */
  devRoot?: string;
  /** Where /proc is (uid_map decides whether uevents can arrive); '/proc' by default. */
  procRoot?: string;
}

/**
 * No rescan() (issue 18): this source only hears what the kernel broadcasts and has no listing of its own.
 * Re-listing would mean walking sysfs, which is the sysfs source's job, or writing `add` to every device's
 * `uevent` file, which makes the kernel replay the events to every listener (udevd re-running its rules,
 * other agents) and needs write access to /sys. So a `rescan` answer does not name it.
 */
export class UeventSource implements DeviceSource {
  readonly name: SourceName = 'uevent';
  private socket: NetlinkSocket | undefined;
  private unsubscribe: Array<() => void> = [];
  private readonly present = new Map<string, UsbDevice>();
  private readonly openSocket: NetlinkSocketFactory;
  private readonly clock: Pick<Clock, 'monotonic'>;
  private readonly sysfsRoot: string;
  private readonly devRoot: string;
  private readonly procRoot: string;
  /** Serialises handling so an add's sysfs reads finish before the matching remove is reported. */
  private queue: Promise<void> = Promise.resolve();
  private socketErrors = 0;
  private lastError: string | undefined;

  constructor(options: UeventSourceOptions = {}) {
    this.openSocket = options.openSocket ?? openUeventSocket;
    this.clock = options.clock ?? systemClock;
    this.sysfsRoot = options.sysfsRoot ?? '/sys';
    this.devRoot = options.devRoot ?? '/dev';
    this.procRoot = options.procRoot ?? '/proc';
  }

  async start(listener: SourceListener): Promise<void> {
    listener.status({ state: 'starting' });
    const blocked = await ueventBlockedReason(this.procRoot);
    if (blocked) {
      listener.status({ state: 'unavailable', reason: blocked, code: ErrorCodes.SOURCE_UNAVAILABLE });
      return;
    }
    let socket: NetlinkSocket;
    try {
      socket = await this.openSocket();
      socket.bind([GROUP_KERNEL]);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const code = isReplugError(err) ? err.code : ErrorCodes.SOURCE_UNAVAILABLE;
      listener.status({ state: 'unavailable', reason: `kernel uevents: ${reason}`, code });
      return;
    }
    this.socket = socket;
    this.unsubscribe.push(
      socket.onMessage((message, info) => {
        // device-monitor.c ignores group-1 messages whose sender port is not 0: only the kernel sends them.
        if (info.port !== 0) return;
        const at = this.clock.monotonic();
        const ev = parseKernelUevent(message);
        if (!ev) return;
        this.queue = this.queue.then(() => this.handle(ev, at, listener)).catch(() => undefined);
      }),
      socket.onError((err) => {
        // ENOBUFS: the receive buffer overflowed and events were lost (net/netlink/af_netlink.c
        // `netlink_overrun`). The socket keeps working and the watcher's rescans cover the gap: count it.
        this.socketErrors++;
        this.lastError = errnoOf(err) ?? err.message;
      }),
    );
    listener.status({ state: 'active' });
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.socket?.close();
    this.socket = undefined;
    // Bounded (issue 12): an add still reading sysfs strings is abandoned after a second.
    await within(systemClock, this.queue, 1000);
  }

  /** The devices this source saw added (and not removed) since start: uevents carry no listing. */
  async list(): Promise<UsbDevice[]> {
    return [...this.present.values()];
  }

  /** Socket errors since start (ENOBUFS = uevents lost to a full receive buffer). */
  stats(): { socketErrors: number; lastError?: string } {
    return { socketErrors: this.socketErrors, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  private async handle(ev: KernelUevent, at: number, listener: SourceListener): Promise<void> {
    if (ev.action !== 'add' && ev.action !== 'remove') return;
    const id = usbIdentity(ev);
    if (!id) return;
    const device = await this.toDevice(ev, id);
    if (ev.action === 'add') {
      this.present.set(instanceId(device), device);
      listener.event({ type: 'added', source: this.name, at, device });
    } else {
      // The remove uevent has no strings (sysfs is gone): report what the add knew about this instance.
      const known = this.present.get(instanceId(device));
      this.present.delete(instanceId(device));
      listener.event({ type: 'removed', source: this.name, at, device: known ?? device });
    }
  }

  private async toDevice(ev: KernelUevent, id: UsbUeventIdentity): Promise<UsbDevice> {
    const device: UsbDevice = {
      key: '',
      vid: id.vid,
      pid: id.pid,
      bus: id.bus,
      address: id.address,
      portPath: id.portPath,
      bcdDevice: id.bcdDevice,
    };
    if (id.deviceClass) device.deviceClass = id.deviceClass;
    if (id.devName) device.devNode = join(this.devRoot, id.devName);
    if (ev.action === 'add') {
      // The strings are sysfs attributes, not uevent fields; on remove the directory is already gone.
      const dir = join(this.sysfsRoot, ev.devpath);
      const lock = deviceLock(id.bus, id.address);
      const [serial, manufacturer, product, speed] = await Promise.all(
        ['serial', 'manufacturer', 'product', 'speed'].map((n) => readAttr(dir, n, lock)),
      );
      if (serial) device.serial = serial;
      if (manufacturer) device.manufacturer = manufacturer;
      if (product) device.product = product;
      if (speed) device.speed = speed;
    }
    device.key = deviceKey(device);
    return device;
  }
}
