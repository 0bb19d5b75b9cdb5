// A usb v3 (nusb) listener, the other kind of app the relay is for: `usb.addEventListener('connect' |
// 'disconnect')`, which binds netlink group 2 only (udev's broadcasts), so in a container with its own network
// namespace it hears nothing unless something re-broadcasts there. On connect of the target it opens and
// closes the device (usbfs under /dev/bus/usb). Target: TEST_VID / TEST_PID (decimal). One JSON line per
// observation: start, connect, open, disconnect.
import { createRequire } from 'node:module';

// usb v3 is the project's own dependency (/replug/node_modules); the control's node_modules hold usb v2.
const { usb } = createRequire('/replug/package.json')('usb');
const vid = Number(process.env.TEST_VID);
const pid = Number(process.env.TEST_PID);
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const isTarget = (d) => d.vendorId === vid && d.productId === pid;
const idOf = (d) => `${Number(d.bus)}-${d.address}`;

usb.addEventListener('connect', async ({ device }) => {
  if (!isTarget(device)) return;
  const id = idOf(device);
  out({ ev: 'connect', id });
  try {
    await device.open();
    await device.close();
    out({ ev: 'open', id, ok: true });
  } catch (e) {
    out({ ev: 'open', id, ok: false, error: String(e?.message ?? e) });
  }
});
usb.addEventListener('disconnect', ({ device }) => {
  if (isTarget(device)) out({ ev: 'disconnect', id: idOf(device) });
});
const present = (await usb.getDevices()).filter(isTarget).map(idOf);
out({ ev: 'start', vid, pid, present });
process.on('SIGTERM', () => process.exit(0));
