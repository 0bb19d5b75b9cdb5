// A replug session driver that needs no USB hardware and no native code: the session is "up" while the
// device's usbfs node (/dev/bus/usb/BBB/DDD, or its twin under --devfs-root on a fake tree) exists, is
// readable and still holds the expected VID:PID in its device descriptor (bytes 8..11, little-endian,
// USB 2.0 Table 9-8). It is what the demo on a fake tree uses:
//
//   replug agent --devfs-root /tmp/tree/dev --sysfs-root /tmp/tree/sys \
//     --target 1209:0001 --driver ./examples/drivers/devnode.mjs
//
// Contract (src/session/drivers/types.ts): open(device, ctx) -> handle, probe(handle, ctx), close(handle,
// ctx). Throw errors whose `code` is a replug code (REPLUG_USB_GONE, ...) to say why; replug restarts.
// Options (factory argument): probeIntervalMs (default 1000).
import { constants } from 'node:fs';
import { access, open as openFile } from 'node:fs/promises';

function failure(code, message, cause) {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code });
}

function fromFsError(err, node) {
  if (err?.code === 'ENOENT') return failure('REPLUG_USB_GONE', `${node} is gone`, err);
  if (err?.code === 'EACCES' || err?.code === 'EPERM')
    return failure('REPLUG_USB_ACCESS', `${node} is not readable`, err);
  return failure('REPLUG_USB_IO', `${node}: ${err?.message ?? err}`, err);
}

async function readIds(node) {
  const fh = await openFile(node, 'r');
  try {
    const buf = Buffer.alloc(18);
    const { bytesRead } = await fh.read(buf, 0, 18, 0);
    if (bytesRead < 18) return undefined; // the kernel (or a fake) may still be writing it
    const hex = (n) => n.toString(16).padStart(4, '0');
    return { vid: hex(buf.readUInt16LE(8)), pid: hex(buf.readUInt16LE(10)) };
  } finally {
    await fh.close();
  }
}

export default function createDevnodeDriver({ options = {} } = {}) {
  return {
    name: 'devnode',
    probeIntervalMs: Number(options.probeIntervalMs ?? 1000),

    async open(device, ctx) {
      const node = device.devNode;
      if (!node) throw failure('REPLUG_DRIVER_FAILED', `device ${device.key} has no devfs node`);
      let ids;
      try {
        ids = await readIds(node);
      } catch (err) {
        throw fromFsError(err, node);
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (ids && (ids.vid !== device.vid || ids.pid !== device.pid)) {
        throw failure(
          'REPLUG_USB_IDENTITY_MISMATCH',
          `${node} holds ${ids.vid}:${ids.pid}, expected ${device.vid}:${device.pid}`,
        );
      }
      ctx.log.debug({ node }, 'devnode session open');
      return { node };
    },

    async probe(handle) {
      try {
        await access(handle.node, constants.R_OK);
      } catch (err) {
        throw fromFsError(err, handle.node);
      }
    },

    async close() {
      // Nothing is held open between calls, so there is nothing to release.
    },
  };
}
