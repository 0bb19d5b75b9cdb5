/**
 * The seq high-water mark, `<queue file>.seq` (docs/topics.md "Event identity"): no event with a seq
 * above it goes to the broker while the disk works, so a restarted agent, which continues above it,
 * never hands out a seq the broker may have seen, whatever the queue file lost. Written durably, fixed
 * width (disk.ts writeCounterDurably), reserved `block` seqs ahead.
 */
import { counterText, type QueueDisk, readSmallFile, writeCounterDurably } from './disk.js';
import { isSeq } from './format.js';

/** Seqs reserved at a time; a restart after a crash continues above the block (a recognisable jump). */
export const MARK_BLOCK = 1000;

export const markFile = (queueFile: string) => `${queueFile}.seq`;

/** The mark, or 0 when absent or not a valid seq (then the queue file's own seqs count alone). */
export async function readMark(disk: QueueDisk, queueFile: string): Promise<number> {
  const text = await readSmallFile(disk, markFile(queueFile)).catch(() => undefined);
  const n = text !== undefined && /^\d{1,16}\n?$/.test(text) ? Number(text.trim()) : 0;
  return isSeq(n) ? n : 0;
}

/** The next mark for the highest seq handed out: at least one whole block above it. */
export function markTarget(wanted: number, block = MARK_BLOCK): number {
  return (Math.floor(wanted / block) + 2) * block;
}

/** Time to reserve again: fewer than half a block left. */
export function markLow(wanted: number, durable: number, block = MARK_BLOCK): boolean {
  return wanted + block / 2 > durable;
}

export function writeMark(disk: QueueDisk, queueFile: string, value: number): Promise<void> {
  return writeCounterDurably(disk, markFile(queueFile), counterText(value));
}
