/**
 * `replug relay`: re-broadcast the kernel's USB uevents (group 1) in udev's format on group 2 inside this
 * network namespace, so libudev/libusb and nusb listeners in a container see add/remove again.
 * moby/moby#35359: udevd's group-2 broadcasts never leave the host's netns, but kernel uevents reach every
 * netns owned by the initial user namespace (lib/kobject_uevent.c `uevent_net_init`).
 *
 * Runs as a value (the aedes habit): `startRelay(options)` resolves to a RunningRelay with stats() and
 * stop(), for `replug relay` and for `replug agent --relay` in-process.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { type KernelUevent, parseKernelUevent } from '../usb/kernel/uevent.js';
import {
  GROUP_KERNEL,
  GROUP_UDEV,
  type NetlinkMessageInfo,
  type NetlinkSocket,
  type NetlinkSocketFactory,
  openUeventSocket,
} from '../usb/netlink.js';
import { type Clock, sleep, systemClock } from '../util/clock.js';
import {
  decodeUdevMessage,
  encodeUdevMessage,
  type UsbAttributes,
  udevPropertiesFor,
} from './udev-message.js';
import { inspectUdevControl } from './udev-presence.js';

export interface RelayOptions {
  openSocket?: NetlinkSocketFactory;
  clock?: Clock;
  logger?: Logger;
  /** Where /run is (<runRoot>/udev/control); '/run' by default. */
  runRoot?: string;
  /** Where /proc is (net/unix tells whether udevd listens in this netns); '/proc' by default. */
  procRoot?: string;
  /** Where /sys is (usb_device strings for ID_VENDOR/ID_MODEL/ID_SERIAL); '/sys' by default. */
  sysfsRoot?: string;
  /** Relay every subsystem, not only SUBSYSTEM=usb. */
  allSubsystems?: boolean;
  /** Run even where a udevd already broadcasts in this netns (every event then arrives twice). */
  force?: boolean;
  /** How long to listen on group 2 for a udevd before relaying (ms); 1000 by default. */
  probeMs?: number;
  /** CLOCK_MONOTONIC in µs, for USEC_INITIALIZED (udevd uses now(CLOCK_MONOTONIC)). */
  monotonicUsec?: () => bigint;
}

export type ControlFileState = 'created' | 'present' | 'host-socket' | 'not-writable';

export interface RelayStats {
  state: 'probing' | 'running' | 'stopped' | 'failed';
  /** Kernel uevents received on group 1. */
  received: number;
  /** udev-format messages sent on group 2. */
  relayed: number;
  /** Kernel uevents not relayed (other subsystems). */
  skipped: number;
  errors: number;
  /** udev-format messages on group 2 that we did not send (a udevd or another relay in this netns). */
  foreignUdev: number;
  controlFile: ControlFileState;
  lastError?: { code: string; message: string };
}

export interface RunningRelay {
  stats(): RelayStats;
  stop(): Promise<void>;
  /** Settles when the relay stops: resolves on stop(), rejects with the ReplugError that stopped it. */
  readonly done: Promise<void>;
}

/** USB actions libusb and nusb act on; `change` is relayed too (udev would). */
const USB_SUBSYSTEM = 'usb';

function udevPresentError(detail: string): ReplugError {
  return new ReplugError(
    ErrorCodes.RELAY_UDEV_PRESENT,
    `a udevd already broadcasts in this network namespace (${detail}): relaying would deliver every event twice`,
    { hint: 'no relay is needed here' },
  );
}

/**
 * A datagram every libudev receiver drops: device-monitor.c `device_monitor_receive_device` discards
 * anything shorter than 32 bytes ("Invalid message length"). Sending it proves CAP_NET_ADMIN at start,
 * so a missing capability fails now with one clear line instead of at the first replug.
 */
const PERMISSION_PROBE = Buffer.from('replug-probe\0', 'latin1');

export async function startRelay(options: RelayOptions = {}): Promise<RunningRelay> {
  const control = await inspectUdevControl(options.runRoot ?? '/run', options.procRoot ?? '/proc');
  if (control.kind === 'udevd-here' && !options.force) {
    throw udevPresentError('/run/udev/control is a socket udevd listens on in this namespace');
  }
  let socket: NetlinkSocket;
  try {
    socket = await (options.openSocket ?? openUeventSocket)();
  } catch (err) {
    if (err instanceof ReplugError) throw err;
    throw new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, `cannot open a netlink socket: ${String(err)}`);
  }
  const relay = new Relay(socket, options);
  await relay.start(control);
  return relay;
}

/** One running relay: the socket, what it relayed, the control file it made (removed on stop). */
class Relay implements RunningRelay {
  readonly done: Promise<void>;
  private readonly counters: RelayStats = {
    state: 'probing',
    received: 0,
    relayed: 0,
    skipped: 0,
    errors: 0,
    foreignUdev: 0,
    controlFile: 'present',
  };
  private readonly log: Logger;
  private readonly usecByDevpath = new Map<string, bigint>();
  private readonly unsubscribe: Array<() => void> = [];
  private queue: Promise<void> = Promise.resolve();
  private createdControl: { path: string; token: string } | undefined;
  private settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private probeError: ReplugError | undefined;

  constructor(
    private readonly socket: NetlinkSocket,
    private readonly options: RelayOptions,
  ) {
    this.log = options.logger ?? silentLogger();
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
    this.unsubscribe.push(
      socket.onMessage((message, info) => {
        if (info.groups & (1 << (GROUP_UDEV - 1))) this.onUdevMessage(message, info);
        else if (info.groups & (1 << (GROUP_KERNEL - 1))) this.onKernelMessage(message, info);
      }),
      socket.onError((err) => {
        this.counters.errors++;
        this.counters.lastError = { code: ErrorCodes.INTERNAL, message: err.message };
        this.log.warn({ err: err.message }, 'netlink socket error (uevents may have been lost)');
      }),
    );
  }

  stats(): RelayStats {
    return { ...this.counters };
  }

  async stop(): Promise<void> {
    if (this.counters.state === 'stopped' || this.counters.state === 'failed') return;
    this.counters.state = 'stopped';
    await this.cleanup();
    this.settle?.resolve();
  }

  /** Proves it may send, listens a moment for a udevd it cannot see in /run, then starts relaying. */
  async start(control: Awaited<ReturnType<typeof inspectUdevControl>>): Promise<void> {
    try {
      this.socket.bind([GROUP_KERNEL, GROUP_UDEV]);
      await this.socket.send(PERMISSION_PROBE, GROUP_UDEV);
      if (control.kind !== 'udevd-here') {
        // A udevd we cannot see in /run (e.g. a private /run) shows itself by broadcasting.
        await sleep(this.options.clock ?? systemClock, this.options.probeMs ?? 1000);
        if (this.probeError) throw this.probeError;
      }
    } catch (err) {
      this.counters.state = 'failed';
      await this.cleanup();
      throw err instanceof ReplugError
        ? err
        : new ReplugError(ErrorCodes.INTERNAL, String(err), { cause: err });
    }
    const runRoot = this.options.runRoot ?? '/run';
    if (control.kind === 'missing') {
      this.createdControl = await createControl(runRoot, this.log);
      this.counters.controlFile = this.createdControl ? 'created' : 'not-writable';
    } else if (control.kind === 'foreign-socket') {
      this.counters.controlFile = 'host-socket';
      this.log.info(
        "/run/udev/control is the host udevd's socket (mounted): its broadcasts stay in the host's network namespace, so relaying here",
      );
    }
    this.counters.state = 'running';
    this.log.info(
      {
        subsystems: this.options.allSubsystems ? 'all' : USB_SUBSYSTEM,
        controlFile: this.counters.controlFile,
      },
      're-broadcasting kernel uevents in udev format on netlink group 2',
    );
  }

  private async cleanup(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.socket.close();
    await this.queue.catch(() => undefined);
    if (this.createdControl) await removeOwnControl(this.createdControl, this.log);
    this.createdControl = undefined;
  }

  private async fail(err: ReplugError): Promise<void> {
    if (this.counters.state === 'stopped' || this.counters.state === 'failed') return;
    this.counters.state = 'failed';
    this.counters.lastError = { code: err.code, message: err.message };
    await this.cleanup();
    this.settle?.reject(err);
  }

  private onUdevMessage(message: Buffer, info: NetlinkMessageInfo): void {
    if (info.port === this.socket.localPort) return;
    if (!decodeUdevMessage(message)) return;
    this.counters.foreignUdev++;
    if (this.options.force) {
      if (this.counters.foreignUdev === 1)
        this.log.warn(
          { port: info.port },
          'another udev broadcaster is active here (relaying anyway, as forced)',
        );
      return;
    }
    const err = udevPresentError(`udev message from netlink port ${info.port}`);
    if (this.counters.state === 'probing') this.probeError = err;
    else void this.fail(err);
  }

  private onKernelMessage(message: Buffer, info: NetlinkMessageInfo): void {
    // Only the kernel (port 0) sends group-1 uevents; device-monitor.c drops others the same way.
    if (info.port !== 0) return;
    const ev = parseKernelUevent(message);
    if (!ev) return;
    this.counters.received++;
    if (this.counters.state !== 'running') return;
    this.queue = this.queue.then(() => this.relayOne(ev)).catch(() => undefined);
  }

  private async relayOne(ev: KernelUevent): Promise<void> {
    const subsystem = ev.properties.get('SUBSYSTEM');
    if (!this.options.allSubsystems && subsystem !== USB_SUBSYSTEM) {
      this.counters.skipped++;
      return;
    }
    // USEC_INITIALIZED is when udev first saw the device; later events (bind, remove) repeat it.
    let usec = this.usecByDevpath.get(ev.devpath);
    const now = this.options.monotonicUsec ?? (() => process.hrtime.bigint() / 1000n);
    if (usec === undefined || ev.action === 'add') usec = now();
    if (ev.action === 'remove') this.usecByDevpath.delete(ev.devpath);
    else this.usecByDevpath.set(ev.devpath, usec);
    const usb =
      ev.action === 'add' && ev.properties.get('DEVTYPE') === 'usb_device'
        ? await readUsbAttributes(join(this.options.sysfsRoot ?? '/sys', ev.devpath))
        : undefined;
    const props = udevPropertiesFor(ev, usb ? { usecInitialized: usec, usb } : { usecInitialized: usec });
    try {
      await this.socket.send(encodeUdevMessage(props), GROUP_UDEV);
      this.counters.relayed++;
      this.log.debug({ action: ev.action, devpath: ev.devpath, seqnum: props.get('SEQNUM') }, 'relayed');
    } catch (err) {
      this.counters.errors++;
      const e =
        err instanceof ReplugError ? err : new ReplugError(ErrorCodes.INTERNAL, String(err), { cause: err });
      this.counters.lastError = { code: e.code, message: e.message };
      // Not awaited: fail() waits for this queue, which includes the call we are in.
      if (e.code === ErrorCodes.RELAY_PERMISSION) void this.fail(e);
      else this.log.warn({ err: e.message, devpath: ev.devpath }, 'relay send failed');
    }
  }
}

/**
 * Creates <run>/udev/control as an empty file: sd-device `device_monitor_new_full` only checks that it
 * exists (access F_OK). Its content is a token so stop() removes only the file this relay created.
 */
async function createControl(
  runRoot: string,
  log: Logger,
): Promise<{ path: string; token: string } | undefined> {
  const path = join(runRoot, 'udev', 'control');
  const token = `replug-relay ${process.pid} ${randomBytes(6).toString('hex')}\n`;
  try {
    await mkdir(join(runRoot, 'udev'), { recursive: true });
    await writeFile(path, token, { flag: 'wx', mode: 0o644 });
    log.info(
      { path },
      'created /run/udev/control: libudev (and so libusb) turns its monitor off when it is missing; removed on stop',
    );
    return { path, token };
  } catch (err) {
    log.warn(
      { path, err: err instanceof Error ? err.message : String(err) },
      'could not create /run/udev/control: libudev-based apps (libusb) will not listen; nusb/usb@3 still will. Mount a writable /run/udev or create it',
    );
    return undefined;
  }
}

async function removeOwnControl(created: { path: string; token: string }, log: Logger): Promise<void> {
  try {
    const st = await stat(created.path);
    if (!st.isFile() || (await readFile(created.path, 'utf8')) !== created.token) return;
    await rm(created.path);
  } catch (err) {
    log.debug({ err: err instanceof Error ? err.message : String(err) }, 'control file already gone');
  }
}

async function readUsbAttributes(dir: string): Promise<UsbAttributes> {
  const read = async (name: string) => {
    try {
      const v = (await readFile(join(dir, name), 'utf8')).trim();
      return v.length > 0 ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const [manufacturer, product, serial] = await Promise.all([
    read('manufacturer'),
    read('product'),
    read('serial'),
  ]);
  const attrs: UsbAttributes = {};
  if (manufacturer) attrs.manufacturer = manufacturer;
  if (product) attrs.product = product;
  if (serial) attrs.serial = serial;
  return attrs;
}
