/**
 * The two ways the queue file is written anew (queue/journal.ts decides which, and when). Both take the
 * snapshot of the queue and the `tail` of lines accepted while they run, and return the new file's fd,
 * opened for appending, or throw with nothing half-done left behind.
 */
import path from 'node:path';
import type { QueueDisk } from './disk.js';

/** The whole queue as the file should hold it (DurableQueue builds it). */
export interface Snapshot {
  /** The meta line, then one line per pending event in seq order. */
  text: string;
  lines: number;
  /** Highest event seq in `text`, 0 when none. */
  lastEventSeq: number;
}

/** Lines accepted while a rewrite runs; they follow the snapshot into the new file. */
export interface Tail {
  lines: string[];
  /** Highest event seq among the snapshot and these lines. */
  lastSeq: number;
}

const noop = () => undefined;

/**
 * Snapshot into `<file>.tmp`, fsync it, then in one synchronous step the tail and the rename over the
 * file (so no line falls between the two files; a crash at any point leaves the old or the new file).
 * The caller fsyncs the directory to make the rename durable.
 */
export async function replaceViaTemp(
  disk: QueueDisk,
  file: string,
  snap: Snapshot,
  tail: Tail,
): Promise<number> {
  const tmp = `${file}.tmp`;
  let fd: number | undefined;
  try {
    await disk.mkdirp(path.dirname(file));
    fd = await disk.openAppend(tmp, true);
    await disk.append(fd, snap.text);
    await disk.fsync(fd);
    if (tail.lines.length > 0) disk.appendSync(fd, tail.lines.join(''));
    disk.renameSync(tmp, file);
    return fd;
  } catch (err) {
    if (fd !== undefined) await disk.close(fd).catch(noop);
    await disk.unlink(tmp).catch(noop);
    throw err;
  }
}

/**
 * Truncate the file and write the snapshot and the tail into it: for when the directory refuses a temp
 * file (read-only dir, full disk). Only safe when no pending event has this file as its only copy; the
 * new content is synced by the next periodic sync.
 */
export async function rewriteInPlace(
  disk: QueueDisk,
  file: string,
  snap: Snapshot,
  tail: Tail,
): Promise<number> {
  const fd = await disk.openAppend(file);
  try {
    await disk.truncate(fd, 0);
    await disk.append(fd, snap.text);
    if (tail.lines.length > 0) disk.appendSync(fd, tail.lines.join(''));
    return fd;
  } catch (err) {
    await disk.close(fd).catch(noop);
    throw err;
  }
}
