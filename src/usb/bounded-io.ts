/**
 * Bounded reads of sysfs attributes and usbfs nodes (issue 12, "open() that never returns").
 *
 * Every fs call of Node runs on one of libuv's 4 thread-pool threads. An open() that blocks in the kernel
 * holds its thread until the kernel lets go: a FIFO in place of a node or an attribute blocks until a
 * writer comes (for ever, on a hostile or broken tree); on a real kernel usbdev_open() and the string
 * attributes (manufacturer, product, serial: usb_string_attr() in drivers/usb/core/sysfs.c) take the
 * device lock, which the kernel holds while drivers probe, for as long as a stuck probe lasts. Four such
 * opens stopped every fs call of the agent: detection, the queue file, and the stop path. And unbounded
 * parallel reads of 2,000 devices opened 20,000 files at once (EMFILE).
 *
 * So here:
 * - the file type is checked before opening and again on the open fd: attributes must be regular files;
 *   nodes must be character devices of major 189 (USB_DEVICE_MAJOR), or regular files (fake trees);
 * - opens are O_NONBLOCK: a FIFO opens at once and reads empty, so it is rejected, never waited on;
 * - at most `concurrency` reads run at once (an fd bound), each with a time bound; a read past its bound
 *   is "stuck": its caller gets ETIMEDOUT, and the read keeps its fd until the kernel returns;
 * - reads that take the device lock carry a lock key (the device): they run one at a time per device,
 *   and while one of them is stuck the others fail at once with EBUSY instead of stacking up threads;
 * - with `maxStuck` reads stuck, every new read fails at once with EBUSY: the thread pool stays usable.
 * A failed read's error carries `settled`, which resolves when the stuck read it waited on returns, so a
 * caller can try again then.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  read as readFd,
  readSync,
  type Stats,
  statSync,
} from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { type Clock, systemClock, type TimerHandle } from '../util/clock.js';

/** USB_DEVICE_MAJOR (include/linux/usb.h): usbfs device nodes /dev/bus/usb/BBB/DDD. */
export const USB_DEVICE_MAJOR = 189;
/** sysfs attributes are at most one page (fs/sysfs/file.c: show() fills a PAGE_SIZE buffer). */
export const ATTR_READ_LIMIT = 4096;

export type UsbFsErrorCode = 'ETIMEDOUT' | 'EBUSY' | 'ENOTNODE' | 'ENOTATTR';

export class UsbFsError extends Error {
  override readonly name = 'UsbFsError';
  constructor(
    readonly code: UsbFsErrorCode,
    message: string,
    /** Resolves when the stuck read behind this failure returns (at once for type errors). */
    readonly settled: Promise<void> = Promise.resolve(),
  ) {
    super(message);
  }
}

/** The fs calls used, injectable so tests can stand in a kernel that holds a device lock. */
export interface FsOps {
  stat(path: string): Promise<Stats>;
  open(path: string, flags: number): Promise<FileHandle>;
  /**
   * The read of a lock-taking attribute opened synchronously (the only call of it that can wait in the
   * kernel); node:fs read by default. `path` is for a test's stand-in kernel.
   */
  readLocked?(path: string, fd: number, buf: Buffer): Promise<number>;
}

const readLockedFd = (_path: string, fd: number, buf: Buffer) =>
  new Promise<number>((resolve, reject) =>
    readFd(fd, buf, 0, buf.length, null, (err, bytes) => (err ? reject(err) : resolve(bytes))),
  );

/**
 * Synchronous calls for the attributes that take no lock (issue 17): their show() never waits in the
 * kernel (drivers/usb/core/sysfs.c), and five thread-pool round trips per attribute made the first scan
 * of 1,000 devices (14,000 attributes) take seconds. The same type checks; a FIFO still opens at once.
 */
export interface SyncFsOps {
  stat(path: string): Stats;
  open(path: string, flags: number): number;
  fstat(fd: number): Stats;
  read(fd: number, buf: Buffer): number;
  close(fd: number): void;
}

export const realSyncOps: SyncFsOps = {
  stat: (p) => statSync(p),
  open: (p, flags) => openSync(p, flags),
  fstat: (fd) => fstatSync(fd),
  read: (fd, buf) => readSync(fd, buf, 0, buf.length, null),
  close: (fd) => closeSync(fd),
};

export interface UsbFsOptions {
  /** Reads at once; 16 by default (the fd bound). */
  concurrency?: number;
  /** Bound per read; 2000 ms by default. */
  timeoutMs?: number;
  /** Reads stuck past their bound before every new read is refused; 2 by default (libuv has 4 threads). */
  maxStuck?: number;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  ops?: FsOps;
  /**
   * Reads of attributes without a lock key; the real synchronous calls by default, none (every read
   * through `ops`) when `ops` is given without them, so a test's stand-in kernel sees every read.
   */
  syncOps?: SyncFsOps;
}

export interface UsbFsStats {
  inFlight: number;
  stuck: number;
  timeouts: number;
  refused: number;
  rejectedTypes: number;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
const realOps: FsOps = { stat, open: (path, flags) => open(path, flags) };

function kind(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isDirectory()) return 'a directory';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isCharacterDevice()) return `character device ${Math.floor(s.rdev / 256)}:${s.rdev % 256}`;
  return 'not a regular file';
}

/** Linux dev_t major (new encoding: bits 8-19 plus 32-43; only the low part matters for 189). */
function major(rdev: number): number {
  return Math.floor(rdev / 256) % 4096;
}

function nodeProblem(s: Stats): string | undefined {
  if (s.isFile()) return undefined; // fake trees stand regular files in for nodes
  if (s.isCharacterDevice() && major(s.rdev) === USB_DEVICE_MAJOR) return undefined;
  return kind(s);
}

function attrProblem(s: Stats): string | undefined {
  return s.isFile() ? undefined : kind(s);
}

export class UsbFs {
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly maxStuck: number;
  private readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  private readonly ops: FsOps;
  private readonly syncOps: SyncFsOps | undefined;
  private readonly page = Buffer.alloc(ATTR_READ_LIMIT);
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Stuck reads: their completion, by lock key ('' for reads without one). */
  private readonly stuck = new Map<symbol, { lock: string | undefined; settled: Promise<void> }>();
  /** Per lock key, the tail of its chain of reads. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Reads of lock-taking attributes in flight, by path (shared by every caller asking meanwhile). */
  private readonly attrsInFlight = new Map<string, Promise<Buffer>>();
  private counters = { timeouts: 0, refused: 0, rejectedTypes: 0 };

  constructor(options: UsbFsOptions = {}) {
    this.concurrency = options.concurrency ?? 16;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxStuck = options.maxStuck ?? 2;
    this.clock = options.clock ?? systemClock;
    this.ops = options.ops ?? realOps;
    this.syncOps = options.syncOps ?? (options.ops ? undefined : realSyncOps);
  }

  stats(): UsbFsStats {
    return { inFlight: this.active, stuck: this.stuck.size, ...this.counters };
  }

  /** Up to `limit` bytes of a usbfs node (or a fake tree's regular file standing in for one). */
  readNode(path: string, limit: number, lock?: string): Promise<Buffer> {
    return this.run(path, lock, () => this.readBounded(path, limit, nodeProblem, 'ENOTNODE', 'a usbfs node'));
  }

  /**
   * One attribute's bytes (at most a page). `lock` marks attributes whose show() takes the device lock
   * (the strings): those run one at a time per device.
   */
  readAttr(path: string, lock?: string): Promise<Buffer> {
    if (lock === undefined && this.syncOps) {
      try {
        return Promise.resolve(this.readAttrNow(this.syncOps, path));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    // The same attribute asked for again while a read of it is in flight (the sources each look a new
    // device up): share that read instead of queueing another behind the device lock.
    const flying = this.attrsInFlight.get(path);
    if (flying) return flying;
    const sync = this.syncOps;
    const read = this.run(path, lock, () =>
      sync
        ? this.readLockedAttr(sync, path)
        : this.readBounded(path, ATTR_READ_LIMIT, attrProblem, 'ENOTATTR', 'a sysfs attribute'),
    );
    this.attrsInFlight.set(path, read);
    const forget = () => {
      if (this.attrsInFlight.get(path) === read) this.attrsInFlight.delete(path);
    };
    read.then(forget, forget);
    return read;
  }

  /**
   * An attribute whose show() takes the device lock: only read() waits for it (kernfs calls show() at
   * the first read; open, fstat and close of a sysfs file never wait), so only the read goes to the
   * thread pool: one round trip instead of three (issue 17: the lab's serial came 200-300 ms after the
   * kernel let go of the lock, each sources' reads queued one at a time behind each other).
   */
  private async readLockedAttr(ops: SyncFsOps, path: string): Promise<Buffer> {
    const before = attrProblem(ops.stat(path));
    if (before) throw this.typeError('ENOTATTR', `${path} is ${before}, not a sysfs attribute`);
    const fd = ops.open(path, READ_FLAGS);
    try {
      const after = attrProblem(ops.fstat(fd));
      if (after) throw this.typeError('ENOTATTR', `${path} is ${after}, not a sysfs attribute`);
      const buf = Buffer.alloc(ATTR_READ_LIMIT);
      const n = await (this.ops.readLocked ?? readLockedFd)(path, fd, buf);
      return buf.subarray(0, n);
    } finally {
      try {
        ops.close(fd);
      } catch {
        // Closing a read-only fd fails only if it is already gone.
      }
    }
  }

  /**
   * An attribute that takes no lock, read in the caller's tick; undefined when this reader has no
   * synchronous calls (a test's stand-in kernel) so the caller takes the asynchronous path. Throws as
   * readAttr rejects (missing, not a regular file).
   */
  readAttrSync(path: string): Buffer | undefined {
    return this.syncOps ? this.readAttrNow(this.syncOps, path) : undefined;
  }

  /** Whether readAttrSync can answer (the reader has synchronous calls). */
  get canReadSync(): boolean {
    return this.syncOps !== undefined;
  }

  private async readBounded(
    path: string,
    limit: number,
    problem: (s: Stats) => string | undefined,
    code: UsbFsErrorCode,
    what: string,
  ): Promise<Buffer> {
    // stat and fstat never wait for the device lock (only open() of a node and a string's read do): with
    // the synchronous calls at hand they skip two of the five thread-pool round trips (issue 17).
    const sync = this.syncOps;
    const before = problem(sync ? sync.stat(path) : await this.ops.stat(path));
    if (before) throw this.typeError(code, `${path} is ${before}, not ${what}`);
    const fh = await this.ops.open(path, READ_FLAGS);
    try {
      // Swapped between stat and open (a FIFO opened O_NONBLOCK returns at once): check the fd itself.
      const after = problem(sync ? sync.fstat(fh.fd) : await fh.stat());
      if (after) throw this.typeError(code, `${path} is ${after}, not ${what}`);
      const buf = Buffer.alloc(limit);
      // A plain read from the fd's own offset (0), not pread: any readable file works.
      const { bytesRead } = await fh.read(buf, 0, limit, null);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private readAttrNow(ops: SyncFsOps, path: string): Buffer {
    const before = attrProblem(ops.stat(path));
    if (before) throw this.typeError('ENOTATTR', `${path} is ${before}, not a sysfs attribute`);
    const fd = ops.open(path, READ_FLAGS);
    try {
      const after = attrProblem(ops.fstat(fd));
      if (after) throw this.typeError('ENOTATTR', `${path} is ${after}, not a sysfs attribute`);
      // One page buffer for every read, the bytes copied out: a fresh 4 KiB per attribute was most of
      // the first scan's garbage.
      return Buffer.from(this.page.subarray(0, ops.read(fd, this.page)));
    } finally {
      try {
        ops.close(fd);
      } catch {
        // Closing a read-only fd fails only if it is already gone.
      }
    }
  }

  private typeError(code: UsbFsErrorCode, message: string): UsbFsError {
    this.counters.rejectedTypes++;
    return new UsbFsError(code, message);
  }

  private refuse(message: string, settled: Promise<void>): never {
    this.counters.refused++;
    throw new UsbFsError('EBUSY', message, settled);
  }

  private stuckOn(lock: string): Promise<void> | undefined {
    for (const s of this.stuck.values()) if (s.lock === lock) return s.settled;
    return undefined;
  }

  private async run<T>(path: string, lock: string | undefined, read: () => Promise<T>): Promise<T> {
    if (lock === undefined) return this.bounded(path, undefined, read);
    // One at a time per device: chain behind the previous read of this lock key.
    const previous = this.chains.get(lock) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = previous.then(() => mine);
    this.chains.set(lock, tail);
    try {
      await previous;
      return await this.bounded(path, lock, read);
    } finally {
      release();
      if (this.chains.get(lock) === tail) this.chains.delete(lock);
    }
  }

  private async bounded<T>(path: string, lock: string | undefined, read: () => Promise<T>): Promise<T> {
    if (lock !== undefined) {
      const busy = this.stuckOn(lock);
      if (busy) this.refuse(`an earlier read of this device is still waiting in the kernel (${path})`, busy);
    }
    if (this.stuck.size >= this.maxStuck) {
      // Reading is possible again as soon as any stuck read returns, not only the oldest (which one was
      // stuck first depends on which bound fired first: the test that released one raced on it).
      const any = Promise.race([...this.stuck.values()].map((st) => st.settled));
      this.refuse(`${this.stuck.size} reads are stuck in the kernel; not reading ${path} now`, any);
    }
    await this.acquire();
    const id = Symbol(path);
    let timer: TimerHandle | undefined;
    let timedOut = false;
    const work = read();
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await new Promise<T>((resolve, reject) => {
        timer = this.clock.setTimeout(() => {
          timer = undefined;
          timedOut = true;
          this.counters.timeouts++;
          // Stuck: the caller moves on; the read keeps its fd and thread until the kernel returns.
          this.stuck.set(id, { lock, settled });
          this.releaseSlot();
          void settled.then(() => this.stuck.delete(id));
          reject(
            new UsbFsError(
              'ETIMEDOUT',
              `reading ${path} took over ${this.timeoutMs} ms (still waiting in the kernel)`,
              settled,
            ),
          );
        }, this.timeoutMs);
        work.then(resolve, reject);
      });
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer);
      if (!timedOut) this.releaseSlot();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.active++;
        resolve();
      });
    });
  }

  private releaseSlot(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}

/** Resolves when `work` does or after `ms`, whichever is first; the timer never outlives the call. */
export async function within(
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>,
  work: Promise<unknown>,
  ms: number,
): Promise<void> {
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, ms);
    }),
  ]);
  if (timer !== undefined) clock.clearTimeout(timer);
}

/** The instance every source shares by default, so the fd and stuck-thread bounds hold for the process. */
export const sharedUsbFs = new UsbFs();
