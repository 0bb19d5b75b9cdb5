/**
 * The filesystem as the durable queue uses it, behind a port (habit 1): production is node:fs below;
 * test/mqtt/queue/fake-disk.ts models page cache versus disk, so a test can cut the power between any two
 * steps and check what survives.
 *
 * What runs where (issue 12: fdatasync and compaction ran synchronously on the event loop, on the PUBACK
 * path): `appendSync` and `renameSync` are one short syscall each and stay on the loop, so an event is in
 * the kernel before `publishEvent` returns; everything that waits for the device (fsync, fdatasync, big
 * writes, truncate, fstat) goes to libuv's thread pool.
 */
import {
  close,
  constants,
  fdatasync,
  fstat,
  fsync,
  ftruncate,
  mkdir,
  open,
  read,
  rename,
  renameSync,
  unlink,
  write,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { errnoOf } from '../../errors.js';

export interface QueueDisk {
  mkdirp(dir: string): Promise<void>;
  /** The file in chunks, or undefined when it does not exist. */
  readChunks(file: string): Promise<AsyncIterable<Buffer> | undefined>;
  /** Opens for appending, creating it; `truncate` empties it first. */
  openAppend(file: string, truncate?: boolean): Promise<number>;
  appendSync(fd: number, data: string): void;
  append(fd: number, data: string): Promise<void>;
  datasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  truncate(fd: number, length: number): Promise<void>;
  /** False once the file was unlinked (its state dir removed while the agent runs). */
  linked(fd: number): Promise<boolean>;
  close(fd: number): Promise<void>;
  renameSync(from: string, to: string): void;
  rename(from: string, to: string): Promise<void>;
  /** Writes `data` at offset 0 of the file (created when missing) and fsyncs it. */
  overwrite(file: string, data: string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
  unlink(file: string): Promise<void>;
}

const call = <T>(fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

const CHUNK = 256 * 1024;

export const nodeDisk: QueueDisk = {
  mkdirp: (dir) => call((cb) => mkdir(dir, { recursive: true }, (err) => cb(err, undefined))),

  async readChunks(file) {
    let fd: number;
    try {
      fd = await call<number>((cb) => open(file, 'r', cb));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
    return (async function* chunks() {
      const buf = Buffer.allocUnsafe(CHUNK);
      try {
        for (;;) {
          const n = await call<number>((cb) => read(fd, buf, 0, CHUNK, null, cb));
          if (n === 0) return;
          // The splitter copies what it keeps, so one buffer serves every read.
          yield buf.subarray(0, n);
        }
      } finally {
        await call((cb) => close(fd, (err) => cb(err, undefined)));
      }
    })();
  },

  openAppend(file, truncate = false) {
    const flags =
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (truncate ? constants.O_TRUNC : 0);
    return call((cb) => open(file, flags, 0o644, cb));
  },

  appendSync(fd, data) {
    const buf = Buffer.from(data);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
  },

  async append(fd, data) {
    const buf = Buffer.from(data);
    let off = 0;
    while (off < buf.length)
      off += await call<number>((cb) => write(fd, buf, off, buf.length - off, null, cb));
  },

  datasync: (fd) => call((cb) => fdatasync(fd, (err) => cb(err, undefined))),
  fsync: (fd) => call((cb) => fsync(fd, (err) => cb(err, undefined))),
  truncate: (fd, length) => call((cb) => ftruncate(fd, length, (err) => cb(err, undefined))),
  linked: async (fd) => (await call<{ nlink: number }>((cb) => fstat(fd, cb))).nlink > 0,
  close: (fd) => call((cb) => close(fd, (err) => cb(err, undefined))),
  renameSync: (from, to) => renameSync(from, to),
  rename: (from, to) => call((cb) => rename(from, to, (err) => cb(err, undefined))),

  async overwrite(file, data) {
    const fd = await call<number>((cb) => open(file, constants.O_WRONLY | constants.O_CREAT, 0o644, cb));
    try {
      const buf = Buffer.from(data);
      let off = 0;
      while (off < buf.length)
        off += await call<number>((cb) => write(fd, buf, off, buf.length - off, off, cb));
      await call((cb) => fsync(fd, (err) => cb(err, undefined)));
    } finally {
      await call((cb) => close(fd, (err) => cb(err, undefined)));
    }
  },

  async fsyncDir(dir) {
    const fd = await call<number>((cb) => open(dir, 'r', cb));
    try {
      await call((cb) => fsync(fd, (err) => cb(err, undefined)));
    } finally {
      await call((cb) => close(fd, (err) => cb(err, undefined)));
    }
  },

  unlink: (file) => call((cb) => unlink(file, (err) => cb(err, undefined))),
};

/** A small file's text, or undefined when it does not exist. */
export async function readSmallFile(
  disk: QueueDisk,
  file: string,
  maxBytes = 4096,
): Promise<string | undefined> {
  const chunks = await disk.readChunks(file);
  if (!chunks) return undefined;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > maxBytes) break;
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * Replaces `file` with `text` so that a crash or power cut leaves the old or the new content, never a mix,
 * and the new content is on the device when this resolves: write a temp file, fsync it, rename it over
 * the old one (rename(2) is atomic), fsync the directory (the rename itself is only durable then).
 */
export async function writeFileDurably(disk: QueueDisk, file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fd = await disk.openAppend(tmp, true);
  try {
    await disk.append(fd, text);
    await disk.fsync(fd);
  } catch (err) {
    await disk.close(fd).catch(() => undefined);
    await disk.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await disk.close(fd);
  try {
    await disk.rename(tmp, file);
  } catch (err) {
    await disk.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await disk.fsyncDir(path.dirname(file));
}

/**
 * For a tiny file of fixed width (a counter): replace it durably, and when the directory refuses the temp
 * file (read-only dir, no free inode or block) overwrite it in place instead. A fixed-width write at offset
 * 0 fits in one sector, which devices write whole, so even then a power cut leaves the old or the new value.
 */
export async function writeCounterDurably(disk: QueueDisk, file: string, text: string): Promise<void> {
  try {
    await writeFileDurably(disk, file, text);
  } catch (err) {
    try {
      await disk.overwrite(file, text);
    } catch {
      throw err;
    }
  }
}

/** n as a fixed-width counter line (17 bytes), see writeCounterDurably. */
export function counterText(n: number): string {
  return `${String(n).padStart(16, '0')}\n`;
}
