// A replug session driver for the lab's Loopback gadget (notes/usb-lab.md: configfs Loopback function,
// interface class 255, bulk OUT EP 0x02, bulk IN EP 0x81, 512-byte packets): the session is up while a
// 4096-byte pattern written to EP 0x02 comes back unchanged from EP 0x81. Written against the usb@3
// WebUSB-style API (transferOut/transferIn take the endpoint NUMBER: 2 and 1). Not yet proven on the lab.
//
//   replug agent --target <vid:pid of the gadget> --driver ./examples/drivers/bulk-loopback.mjs
//
// Options (factory argument): probeIntervalMs (default 1000), timeoutMs per transfer (default 1000).
import { randomFillSync } from 'node:crypto';

const OUT_EP = 2; // 0x02
const IN_EP = 1; // 0x81
const SIZE = 4096;

function failure(code, message, cause) {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code });
}

// usb@3 errors carry the OS error in the message; see src/usb/access.ts for the full mapping.
function classify(err, what) {
  const text = String(err?.message ?? err);
  if (/os error (13|1)\b|permission denied/i.test(text))
    return failure('REPLUG_USB_ACCESS', `${what}: ${text}`, err);
  if (/os error 16\b|busy/i.test(text)) return failure('REPLUG_USB_BUSY', `${what}: ${text}`, err);
  if (/os error 19\b|no such device|disconnected/i.test(text))
    return failure('REPLUG_USB_GONE', `${what}: ${text}`, err);
  if (/cancel|timed? ?out/i.test(text)) return failure('REPLUG_USB_TIMEOUT', `${what}: ${text}`, err);
  return failure('REPLUG_USB_IO', `${what}: ${text}`, err);
}

function abortable(promise, signal) {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function loopback(dev, timeoutMs, signal) {
  const pattern = randomFillSync(new Uint8Array(SIZE));
  try {
    const out = await abortable(dev.transferOut(OUT_EP, pattern, timeoutMs), signal);
    if (out.status !== 'ok' || out.bytesWritten !== SIZE)
      throw failure('REPLUG_USB_IO', `bulk OUT ${out.status}, ${out.bytesWritten} bytes`);
    const back = await abortable(dev.transferIn(IN_EP, SIZE, timeoutMs), signal);
    if (back.status !== 'ok' || !back.data) throw failure('REPLUG_USB_IO', `bulk IN ${back.status}`);
    const got = new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength);
    if (got.length !== SIZE || got.some((b, i) => b !== pattern[i])) {
      throw failure('REPLUG_USB_IO', `loopback returned ${got.length} bytes that differ from what was sent`);
    }
  } catch (err) {
    throw err?.code?.startsWith?.('REPLUG_') ? err : classify(err, 'bulk loopback');
  }
}

export default function createBulkLoopbackDriver({ options = {} } = {}) {
  const timeoutMs = Number(options.timeoutMs ?? 1000);
  return {
    name: 'bulk-loopback',
    probeIntervalMs: Number(options.probeIntervalMs ?? 1000),

    async open(device, ctx) {
      const { usb } = await import('usb');
      const list = await usb.getDevices().catch((err) => {
        throw classify(err, 'listing USB devices');
      });
      // usb@3 exposes bus as a string (the decimal bus number on Linux) and address (devnum).
      const dev = list.find((d) => Number(d.bus) === device.bus && d.address === device.address);
      if (!dev) throw failure('REPLUG_USB_GONE', `no device at bus ${device.bus} address ${device.address}`);
      try {
        await abortable(dev.open(), ctx.signal);
        if (dev.configuration?.configurationValue !== 1)
          await abortable(dev.selectConfiguration(1), ctx.signal);
        await abortable(dev.claimInterface(0), ctx.signal);
        await loopback(dev, timeoutMs, ctx.signal);
      } catch (err) {
        // Awaited (bounded): an unfinished close still holds the claim, and the session's next open would
        // find the device busy (EBUSY, seen in the lab after a timed-out transfer).
        let timer;
        await Promise.race([
          dev.close().catch(() => {}),
          new Promise((r) => {
            timer = setTimeout(r, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        throw err?.code?.startsWith?.('REPLUG_') ? err : classify(err, 'opening the loopback gadget');
      }
      return { dev };
    },

    async probe(handle, ctx) {
      await loopback(handle.dev, timeoutMs, ctx.signal);
    },

    async close(handle) {
      await handle.dev.releaseInterface(0).catch(() => {});
      await handle.dev.close().catch(() => {});
    },
  };
}
