// One bulk OUT then IN of 4096 bytes through the Loopback gadget (it buffers bulk_buflen = 4096 bytes, so a
// single 512-byte transfer would time out: usb-lab.md). Prints { ok, ms } or { ok: false, error }.
import usbPkg from 'usb-libusb';

const { findByIds } = usbPkg;
const dev = findByIds(Number(process.env.TEST_VID), Number(process.env.TEST_PID));
const out = (o) => console.log(JSON.stringify(o));
if (!dev) {
  out({ ok: false, error: 'device not found' });
  process.exit(0);
}
const xfer = (ep, arg) => new Promise((res, rej) => ep.transfer(arg, (e, d) => (e ? rej(e) : res(d))));
try {
  dev.open();
  const iface = dev.interface(0);
  iface.claim();
  const epOut = iface.endpoints.find((e) => e.direction === 'out');
  const epIn = iface.endpoints.find((e) => e.direction === 'in');
  epIn.timeout = 5000;
  epOut.timeout = 5000;
  const data = Buffer.alloc(4096, 0);
  for (let i = 0; i < data.length; i++) data[i] = i % 63; // the Loopback function echoes whatever it got
  const t = performance.now();
  await xfer(epOut, data);
  const back = await xfer(epIn, 4096);
  const ms = performance.now() - t;
  await new Promise((r) => iface.release(true, r));
  dev.close();
  out({ ok: Buffer.compare(back, data) === 0, ms: Math.round(ms * 10) / 10, bytes: back.length });
} catch (e) {
  out({ ok: false, error: String(e?.message ?? e) });
}
