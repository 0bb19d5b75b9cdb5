/**
 * The devfs source: inotify (fs.watch) on `<devfsRoot>/bus/usb` and each bus directory in it. The node
 * `BBB/DDD` appears when devtmpfs creates it inside device_add(), before the uevent reaches udev, so this
 * is the fastest path natively, and it works in any container where /dev/bus/usb is bind-mounted from the
 * host (not with `--device`, which snapshots single nodes; moby/moby#35359). It needs neither udev nor
 * sysfs: identity comes from the 18-byte device descriptor the node returns on read.
 *
 * fs.watch is a hint, not a ledger: inotify coalesces identical events and drops them on queue overflow
 * (IN_Q_OVERFLOW), and a directory deleted and recreated leaves the watch on the dead inode. So every
 * event burst triggers a reconcile against directory listings, and watches are keyed by inode.
 *
 * A reconcile only lists; each new node is then read on its own, and reported as soon as its own read
 * is done. On a real kernel a read can wait: usbdev_open() and the string attributes in sysfs take the
 * device lock, which the kernel holds while it probes drivers, and on a loaded single-CPU machine every
 * fs call is a thread-pool round trip of tens of ms. Waiting for every new node before reporting any (and
 * before the next reconcile could start) held devices back by seconds in the TCG lab.
 *
 * Reads are bounded (src/usb/bounded-io.ts, issue 12): something that is not a usbfs node (a FIFO) is
 * unreadable at once; a read the kernel holds past the bound is "busy" and read again when the kernel lets
 * go; stop() returns within `stopTimeoutMs` whatever is still in flight, dropping its results.
 */
import { type FSWatcher, readdirSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCodes, errnoOf } from '../../errors.js';
import { type Clock, sleep, systemClock } from '../../util/clock.js';
import { sharedUsbFs, type UsbFs, UsbFsError, within } from '../bounded-io.js';
import { deviceFromDescriptor, parseDeviceDescriptor } from '../descriptor.js';
import {
  deviceLock,
  dirInode,
  dirInodeSync,
  NODE_READ_LIMIT,
  parseNodeName,
  readNodeHead,
} from '../devfs-read.js';
import { monotonicMs, stamp, stampsOn } from '../stamps.js';
import { devNodePath, SysfsIndex } from '../sysfs-read.js';
import {
  type DeviceSource,
  deviceKey,
  type SourceListener,
  type SourceStatus,
  type UsbDevice,
} from '../types.js';

export interface DevfsSourceOptions {
  devfsRoot: string;
  /** When given, new nodes are enriched from sysfs (serial, strings, port path, speed). */
  sysfsRoot?: string;
  clock?: Clock;
  /**
   * Delays between attempts to read a new node. devtmpfs creates the node before udev applies its
   * owner/mode, and a node can be empty for an instant on fake trees: retry briefly before giving up.
   */
  readRetryDelaysMs?: number[];
  /** The bounded reader; the process-wide one by default. */
  fs?: UsbFs;
  /** stop() waits at most this long for reads in flight; 1000 ms by default. */
  stopTimeoutMs?: number;
  /** Watches one directory (node:fs watch by default): a test can stand in an inotify that drops events. */
  watchDir?: (path: string, onChange: () => void) => FSWatcher;
}

type NodeRead =
  | { kind: 'ok'; device: UsbDevice }
  | { kind: 'gone' }
  | { kind: 'failed'; reason: string }
  /** The kernel holds the read (device lock): read again once `settled`. */
  | { kind: 'busy'; settled: Promise<void> };

const THREE_DIGITS = /^\d{3}$/;

/** sysfs is authoritative for strings, port path and speed; the descriptor for what it carries. */
function merge(base: UsbDevice, sys: UsbDevice | undefined): UsbDevice {
  const merged: UsbDevice = sys ? { ...sys, ...base } : base;
  merged.key = deviceKey(merged);
  return merged;
}

/** How long, and how often, a lookup waits for strings the device lock holds before reporting without them. */
const BUSY_WAIT_MS = 3000;
const BUSY_WAITS = 2;
/** New nodes per watch event that get the synchronous quick report (a hub plugged with 7 devices). */
const QUICK_MAX = 8;

/** Whether a later view of a device tells more than the quick report did (strings, a serial). */
function adds(first: UsbDevice, later: UsbDevice): boolean {
  return (Object.keys(later) as (keyof UsbDevice)[]).some(
    (k) => later[k] !== undefined && first[k] === undefined,
  );
}

export class DevfsSource implements DeviceSource {
  readonly name = 'devfs' as const;
  private readonly options: DevfsSourceOptions;
  private readonly clock: Clock;
  private readonly fs: UsbFs;
  private readonly index: SysfsIndex | undefined;
  private readonly busRoot: string;
  private listener: SourceListener | undefined;
  private abort: AbortController | undefined;
  private readonly watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  /** By `BBB/DDD`. */
  private readonly known = new Map<string, UsbDevice>();
  /** Nodes that stayed unreadable after the retries, with why: not retried until they disappear. */
  readonly unreadable = new Map<string, string>();
  private dirty = false;
  /** When the first watch event since the last reconcile began came (stamps only). */
  private eventAt: number | undefined;
  /** A watch event came since the last reconcile began (new nodes then get the quick report). */
  private fromEvent = false;
  private running: Promise<void> | undefined;
  /** Reads of new nodes in flight, by `BBB/DDD`. */
  private readonly reading = new Map<string, Promise<void>>();
  /** The nodes the latest listing had: a read finishing for a node no longer listed is dropped. */
  private listed = new Set<string>();
  private lastStatus: SourceStatus['state'] | undefined;
  /** Reconciles begun and ended since construction: a rescan waits for one begun after its call. */
  private begun = 0;
  private ended = 0;
  private readonly reconciled: Array<{ after: number; done: () => void }> = [];

  constructor(options: DevfsSourceOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.fs = options.fs ?? sharedUsbFs;
    this.busRoot = join(options.devfsRoot, 'bus', 'usb');
    this.index =
      options.sysfsRoot === undefined ? undefined : new SysfsIndex(options.sysfsRoot, { fs: this.fs });
  }

  async start(listener: SourceListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    this.abort = new AbortController();
    listener.status({ state: 'starting' });
    this.requestReconcile();
    await this.running;
    await this.settleReads(); // devices present at start are reported before start() resolves
  }

  /** Returns within stopTimeoutMs: reads the kernel still holds are abandoned, their results dropped. */
  async stop(): Promise<void> {
    this.listener = undefined;
    this.abort?.abort();
    for (const path of [...this.watchers.keys()]) this.unwatch(path);
    const settle = (async () => {
      await this.running;
      await this.settleReads();
    })();
    await within(this.clock, settle, this.options.stopTimeoutMs ?? 1000);
    for (const path of [...this.watchers.keys()]) this.unwatch(path); // a reconcile may have raced us
    this.known.clear();
    this.listed.clear();
    this.unreadable.clear();
    this.reading.clear();
    this.index?.clear();
    this.lastStatus = undefined;
  }

  /**
   * A full reconcile that begins after this call (issue 18's `rescan`), with another read for every node
   * marked unreadable: what an operator asks for after fixing a permission, or when inotify lost events.
   * Resolves once that reconcile ended and the reads of the nodes it listed settled (each is bounded by
   * the reader's limits, and stop() ends the wait). Nodes marked busy are left alone: they are read again
   * by themselves when the kernel returns the stuck read, and a second read would only queue behind it.
   */
  async rescan(): Promise<void> {
    if (!this.listener) return;
    for (const [name, why] of this.unreadable) if (!why.startsWith('busy')) this.unreadable.delete(name);
    const after = this.begun;
    const reconciled = new Promise<void>((done) => this.reconciled.push({ after, done }));
    this.requestReconcile();
    await reconciled;
    const signal = this.abort?.signal;
    if (!signal || signal.aborted) return;
    let onAbort = () => {};
    const stopped = new Promise<void>((r) => {
      onAbort = () => r();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([Promise.all(this.reading.values()), stopped]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async list(): Promise<UsbDevice[]> {
    const names = this.listNodes();
    if (!names) return [];
    const reads = await Promise.all(names.map((n) => this.readNode(n, [])));
    return reads.flatMap((r) => (r.kind === 'ok' ? [r.device] : []));
  }

  /** Watch handles held now (a leak check for tests). */
  get watchCount(): number {
    return this.watchers.size;
  }

  private async settleReads(): Promise<void> {
    while (this.reading.size > 0) await Promise.all(this.reading.values());
  }

  /** Coalesces event bursts: one reconcile runs at a time, and one more runs if events came meanwhile. */
  private requestReconcile(): void {
    if (!this.listener) return;
    this.dirty = true;
    if (this.running) return;
    this.running = (async () => {
      while (this.dirty && this.listener) {
        this.dirty = false;
        const n = ++this.begun;
        try {
          await this.reconcile();
        } catch {
          // Only fs races land here (a directory vanishing mid-walk); the next event or walk repairs it.
        }
        this.ended = n;
        this.wakeRescans(false);
      }
    })().finally(() => {
      this.running = undefined;
      // Asked for between the loop's last check and here (a rescan from another microtask): run it.
      if (this.dirty && this.listener) this.requestReconcile();
      else this.wakeRescans(true); // stopped, or nothing asked: no reconcile will come
    });
  }

  /** Resolves the rescans whose reconcile ended (or all of them when no more will run). */
  private wakeRescans(all: boolean): void {
    for (let i = this.reconciled.length - 1; i >= 0; i--) {
      const w = this.reconciled[i];
      if (w && (all || this.ended > w.after)) {
        this.reconciled.splice(i, 1);
        w.done();
      }
    }
  }

  private async reconcile(): Promise<void> {
    const eventAt = this.eventAt;
    const fromEvent = this.fromEvent;
    this.eventAt = undefined;
    this.fromEvent = false;
    const rootIno = dirInodeSync(this.busRoot);
    if (!this.listener) return;
    if (rootIno === undefined) {
      this.listed = new Set();
      for (const path of [...this.watchers.keys()]) if (path.startsWith(this.busRoot)) this.unwatch(path);
      this.emitRemovals(new Set());
      this.setStatus({
        state: 'unavailable',
        code: ErrorCodes.NO_USB_BUS,
        reason: `no USB bus on this host (${this.busRoot} is missing)`,
      });
      await this.watchNearestAncestor();
      return;
    }
    // The bus root exists: drop the ancestor watch, (re)watch the root and each bus directory.
    for (const path of [...this.watchers.keys()]) if (!path.startsWith(this.busRoot)) this.unwatch(path);
    this.ensureWatch(this.busRoot, rootIno);
    const names = this.listNodes(true);
    if (!this.listener || !names) return;
    this.setStatus({ state: 'active' });
    const present = new Set(names);
    this.listed = present;
    this.emitRemovals(present);
    for (const name of this.unreadable.keys()) if (!present.has(name)) this.unreadable.delete(name);
    const fresh = names.filter((n) => !this.known.has(n) && !this.unreadable.has(n) && !this.reading.has(n));
    // A plug, not a first walk or a rescan: report what sysfs says without a lock at once (a handful of
    // synchronous reads each, so only for a few nodes at a time).
    const quick = fromEvent && fresh.length <= QUICK_MAX;
    for (const name of fresh) this.startRead(name, eventAt, quick);
  }

  /**
   * Reads one new node and reports it when done, without holding up other nodes or the next reconcile.
   * With `quick`, the lock-free identity from sysfs is reported first, in this tick (issue 17: the node's
   * descriptor and the strings wait for the device lock, which the kernel holds while drivers probe; the
   * report waited 400-1,400 ms behind it in the lab), and the full read reports again when it has more
   * (the watcher merges the views; a serial learnt later is its device.identified).
   */
  private startRead(name: string, eventAt: number | undefined, quick = false): void {
    const delays = this.options.readRetryDelaysMs ?? [2, 5, 10, 20, 40, 80];
    const at0 = parseNodeName(name);
    if (eventAt !== undefined) stamp('inotify', at0, eventAt);
    stamp('listed', at0);
    const first = quick ? this.reportPlain(name) : undefined;
    const done: Promise<void> = (async () => {
      if (first !== undefined) {
        // sysfs named the device: what it has still to say is the strings, behind the device lock. The
        // node's descriptor says nothing more, and its read queued in front of them on that lock.
        const full = await this.lookupSysfs(at0.bus, at0.address);
        // Gone, or removed and back meanwhile (a newer read has it), or stopped: nothing to report.
        if (!this.listener || !this.listed.has(name) || this.known.get(name) !== first) return;
        if (full && adds(first, full)) this.report(name, full);
        return;
      }
      const read = await this.readNode(name, delays);
      // Gone from the listing meanwhile (unplugged mid-read), or stopped: nothing to report.
      if (!this.listener || !this.listed.has(name) || this.known.has(name)) return;
      if (read.kind === 'failed') this.unreadable.set(name, read.reason);
      if (read.kind === 'busy') {
        // Not unreadable: slow. Read it again once the kernel returns the stuck read.
        this.unreadable.set(name, 'busy: the kernel holds the device lock');
        const listener = this.listener;
        void read.settled.then(() => {
          if (this.listener !== listener || this.unreadable.get(name)?.startsWith('busy') !== true) return;
          this.unreadable.delete(name);
          this.requestReconcile();
        });
      }
      if (read.kind !== 'ok') return;
      // The node read and sysfs lookup, strings included (they wait for the device lock), are one stage here.
      this.report(name, read.device);
    })()
      .catch(() => {
        // readNode turns fs errors into results; a throwing listener is the watcher's to report.
      })
      .finally(() => {
        if (this.reading.get(name) === done) this.reading.delete(name);
      });
    this.reading.set(name, done);
  }

  /** Records a node's device and reports it (again, when a later read knows more). */
  private report(name: string, device: UsbDevice): void {
    this.known.set(name, device);
    const at = this.clock.monotonic();
    stamp('identity', device);
    stamp('source', device, undefined, 'devfs');
    this.listener?.event({ type: 'added', source: 'devfs', at, device: { ...device } });
  }

  /** The quick report: sysfs' lock-free attributes for this node, when sysfs has them now. */
  private reportPlain(name: string): UsbDevice | undefined {
    const { bus, address } = parseNodeName(name);
    const device = this.index?.findPlainSync(bus, address, this.options.devfsRoot);
    if (device) this.report(name, device);
    return device;
  }

  /** `BBB/DDD` of every device node (root hubs, always devnum 1, left out); undefined without a bus root. */
  private listNodes(watchBuses = false): string[] | undefined {
    let buses: string[];
    try {
      buses = readdirSync(this.busRoot).filter((b) => THREE_DIGITS.test(b));
    } catch {
      return undefined;
    }
    if (watchBuses) {
      for (const path of [...this.watchers.keys()]) {
        if (path !== this.busRoot && !buses.includes(path.slice(this.busRoot.length + 1))) this.unwatch(path);
      }
    }
    // devtmpfs is in memory and never waits: listed in this tick, so a plug's node is seen inside the
    // inotify callback instead of behind every thread-pool round trip queued on a busy machine.
    const perBus = buses.map((bus) => {
      const dir = join(this.busRoot, bus);
      // Watch before listing, so a node created in between is seen by one or the other.
      if (watchBuses) {
        const ino = dirInodeSync(dir);
        if (ino === undefined || !this.listener) return [];
        this.ensureWatch(dir, ino);
      }
      try {
        return readdirSync(dir)
          .filter((n) => THREE_DIGITS.test(n) && n !== '001')
          .map((n) => `${bus}/${n}`);
      } catch {
        return [];
      }
    });
    return perBus.flat().sort();
  }

  private async readNode(name: string, delays: number[]): Promise<NodeRead> {
    const { bus, address } = parseNodeName(name);
    const path = devNodePath(this.options.devfsRoot, bus, address);
    // sysfs is looked up alongside the node read, not after it: on a real kernel its entry exists before
    // the node (device_add), and each is a few thread-pool round trips that need not queue behind the other.
    const early = this.lookupSysfs(bus, address);
    let reason = 'unreadable';
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) {
        try {
          await sleep(this.clock, delays[attempt - 1] ?? 0, this.abort?.signal);
        } catch {
          return { kind: 'gone' }; // stopped
        }
      }
      let data: Buffer;
      try {
        data = await readNodeHead(path, NODE_READ_LIMIT, { fs: this.fs, lock: deviceLock(bus, address) });
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return { kind: 'gone' };
        if (err instanceof UsbFsError && (err.code === 'ETIMEDOUT' || err.code === 'EBUSY')) {
          return { kind: 'busy', settled: err.settled };
        }
        if (err instanceof UsbFsError) {
          reason = err.message; // not a usbfs node (a FIFO, say): retrying cannot help
          break;
        }
        reason = `cannot read ${path}: ${errnoOf(err) ?? String(err)}`;
        continue;
      }
      const parsed = parseDeviceDescriptor(data);
      if (!parsed.ok) {
        reason = `bad descriptor in ${path}: ${parsed.reason}`;
        continue;
      }
      const base = deviceFromDescriptor(parsed.descriptor, { bus, address, devNode: path });
      // After retries the early lookup may predate the entry (fake trees): look again.
      const sys = await (attempt === 0 ? early : this.lookupSysfs(bus, address));
      return { kind: 'ok', device: merge(base, sys) };
    }
    // Unreadable (EACCES in a rootless container, say) but sysfs may still know who it is.
    const fromSysfs = await this.lookupSysfs(bus, address);
    return fromSysfs ? { kind: 'ok', device: fromSysfs } : { kind: 'failed', reason };
  }

  private async lookupSysfs(bus: number, address: number): Promise<UsbDevice | undefined> {
    if (this.index === undefined) return undefined;
    try {
      for (let waits = 0; ; waits++) {
        const found = await this.index.find(bus, address, this.options.devfsRoot);
        if (!found || !('busy' in found)) return found;
        // The strings (the serial among them) wait for the device lock, which the kernel holds while it
        // probes the device's drivers. This full read waits for them: it is the report that carries the
        // serial (after the quick one, on a plug), or the only one (a first walk, no devt link), and a
        // report without them that nothing followed left a target named by its serial unmatched (the
        // lab's two-target run). A lock held for good still ends in what the descriptor says.
        if (waits >= BUSY_WAITS || this.abort?.signal.aborted) return undefined;
        await within(this.clock, found.busy, BUSY_WAIT_MS);
      }
    } catch {
      return undefined;
    }
  }

  private emitRemovals(present: Set<string>): void {
    const at = this.clock.monotonic();
    for (const [name, device] of this.known) {
      if (present.has(name)) continue;
      this.known.delete(name);
      this.listener?.event({ type: 'removed', source: 'devfs', at, device: { ...device } });
    }
  }

  private setStatus(status: SourceStatus): void {
    if (status.state === this.lastStatus) return;
    this.lastStatus = status.state;
    this.listener?.status(status);
  }

  /** The bus root may not exist yet (usbcore not loaded, /dev/bus/usb not mounted): watch up the tree. */
  private async watchNearestAncestor(): Promise<void> {
    let dir = dirname(this.busRoot);
    for (;;) {
      const ino = await dirInode(dir);
      if (!this.listener) return;
      if (ino !== undefined) {
        for (const path of [...this.watchers.keys()]) if (path !== dir) this.unwatch(path);
        // A new, deeper ancestor may have gained its child before the watch existed (mkdir -p): walk
        // again once the watch is in place, so nothing created in between is missed.
        if (this.watchers.get(dir)?.ino !== ino) this.dirty = true;
        this.ensureWatch(dir, ino);
        return;
      }
      const parent = dirname(dir);
      if (parent === dir) return;
      dir = parent;
    }
  }

  private ensureWatch(path: string, ino: number): void {
    const existing = this.watchers.get(path);
    if (existing?.ino === ino) return;
    if (existing) this.unwatch(path); // deleted and recreated: the old watch is on a dead inode
    try {
      const onChange = () => {
        if (this.eventAt === undefined && stampsOn()) this.eventAt = monotonicMs();
        this.fromEvent = true;
        this.requestReconcile();
      };
      const watcher = this.options.watchDir
        ? this.options.watchDir(path, onChange)
        : watch(path, { persistent: true }, onChange);
      // An error (the directory vanished) must not become an uncaught 'error' event: re-walk instead.
      watcher.on('error', () => {
        this.unwatch(path);
        this.requestReconcile();
      });
      this.watchers.set(path, { watcher, ino });
    } catch {
      this.requestReconcile(); // vanished between stat and watch
    }
  }

  private unwatch(path: string): void {
    const entry = this.watchers.get(path);
    if (!entry) return;
    this.watchers.delete(path);
    entry.watcher.removeAllListeners('change');
    entry.watcher.close();
  }
}
