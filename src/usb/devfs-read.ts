/**
 * Reading usbfs nodes (`/dev/bus/usb/BBB/DDD`), shared by the devfs source and `replug list`.
 */
import { open, stat } from 'node:fs/promises';

/** usbfs returns the device descriptor then every configuration descriptor; 4 KiB covers real devices. */
export const NODE_READ_LIMIT = 4096;

/**
 * Reads the first `limit` bytes. Opening a usbfs node for reading claims nothing (usbdev_open only
 * autoresumes the device), so this is safe while another process has the device open.
 */
export async function readNodeHead(path: string, limit = NODE_READ_LIMIT): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(limit);
    // From the fresh descriptor's own offset (0): a plain read, not pread, so any readable file works
    // (the tests stand a FIFO in for a node whose open waits on the device lock; pread there is ESPIPE).
    const { bytesRead } = await fh.read(buf, 0, limit, null);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Inode of a directory, or undefined when it is missing or not a directory. */
export async function dirInode(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? s.ino : undefined;
  } catch {
    return undefined;
  }
}

/** `BBB/DDD` -> bus and address. */
export function parseNodeName(name: string): { bus: number; address: number } {
  const [b = '', d = ''] = name.split('/');
  return { bus: Number.parseInt(b, 10), address: Number.parseInt(d, 10) };
}
