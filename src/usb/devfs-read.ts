/**
 * Reading usbfs nodes (`/dev/bus/usb/BBB/DDD`), shared by the devfs source and `replug list`.
 */
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { sharedUsbFs, type UsbFs } from './bounded-io.js';

/** usbfs returns the device descriptor then every configuration descriptor; 4 KiB covers real devices. */
export const NODE_READ_LIMIT = 4096;

/** The lock key of a device instance: usbdev_open() and the sysfs strings take the same device lock. */
export function deviceLock(bus: number, address: number): string {
  return `usb:${bus}-${address}`;
}

/**
 * Reads the first `limit` bytes. Opening a usbfs node for reading claims nothing (usbdev_open only
 * autoresumes the device), so this is safe while another process has the device open. Bounded
 * (src/usb/bounded-io.ts): a FIFO or another non-node fails with ENOTNODE, a read the kernel holds
 * longer than the bound with ETIMEDOUT, a device whose earlier read is still stuck with EBUSY.
 */
export function readNodeHead(
  path: string,
  limit = NODE_READ_LIMIT,
  options: { fs?: UsbFs; lock?: string } = {},
): Promise<Buffer> {
  return (options.fs ?? sharedUsbFs).readNode(path, limit, options.lock);
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

/**
 * dirInode in the caller's tick. For devtmpfs directories (/dev/bus/usb and its bus directories), which
 * live in memory and never wait: the devfs source lists them inside the inotify callback (issue 17).
 */
export function dirInodeSync(path: string): number | undefined {
  const s = statSync(path, { throwIfNoEntry: false });
  return s?.isDirectory() ? s.ino : undefined;
}
