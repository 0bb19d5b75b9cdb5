// The control: a minimal libusb reconnect loop on the `usb` v2 package (libusb 1.0, udev backend), the path
// the seed tool and most USB apps take. It must reconnect natively and never in the container-like namespace
// (moby/moby#35359: libusb's device list is a cache fed only by udev broadcasts, which stay in udevd's netns).
// If it does reconnect there, the lab is not testing what it claims.
// Target: TEST_VID / TEST_PID, decimal like the seed. Prints one JSON line per observation.
import usbPkg from 'usb-libusb';

const { usb, getDeviceList } = usbPkg;
const vid = Number(process.env.TEST_VID);
const pid = Number(process.env.TEST_PID);
const pollMs = Number(process.env.CONTROL_POLL_MS ?? 250);
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const isTarget = (d) => d.deviceDescriptor.idVendor === vid && d.deviceDescriptor.idProduct === pid;
const idOf = (d) => `${d.busNumber}-${d.deviceAddress}`;

let current = null;

function tryOpen(d) {
  try {
    d.open();
    d.close();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) };
  }
}

function poll() {
  const found = getDeviceList().find(isTarget);
  if (found && idOf(found) !== current) {
    current = idOf(found);
    out({ ev: 'appear', id: current, via: 'list' });
    out({ ev: 'open', id: current, ...tryOpen(found) });
  } else if (!found && current) {
    out({ ev: 'disappear', id: current, via: 'list' });
    current = null;
  }
}

let hotplug = true;
try {
  usb.on('attach', (d) => isTarget(d) && out({ ev: 'attach', id: idOf(d) }));
  usb.on('detach', (d) => isTarget(d) && out({ ev: 'detach', id: idOf(d) }));
} catch (e) {
  hotplug = String(e?.message ?? e);
}
out({ ev: 'start', vid, pid, hotplug, pid_: process.pid });
poll();
const timer = setInterval(poll, pollMs);
process.on('SIGTERM', () => {
  clearInterval(timer);
  usb.removeAllListeners('attach');
  usb.removeAllListeners('detach');
  process.exit(0);
});
