// replug's own kernel-uevent source (dist/src/usb/sources/uevent.js, group 1) as a watcher process: prints
// one JSON line per usb_device added or removed. `t` is when the datagram arrived (the source's own `at`, which
// the agent's events carry), `reported` when the source handed the device over (after reading its sysfs
// strings); both on CLOCK_MONOTONIC, like every other lab timestamp.
import { UeventSource } from '/replug/dist/src/usb/sources/uevent.js';

const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
// The source stamps `at` with its clock's monotonic(): give it CLOCK_MONOTONIC (process.hrtime), so `at` is on
// the clock of the kernel's timestamps as the lab maps them (performance.now() was measured ~150 ms off here).
const source = new UeventSource({ clock: { monotonic: mono } });
await source.start({
  event: (ev) =>
    out({
      t: ev.at,
      reported: mono(),
      type: ev.type === 'added' ? 'add' : 'remove',
      bus: ev.device.bus,
      devnum: ev.device.address,
      port: ev.device.portPath,
      vid: ev.device.vid,
      pid: ev.device.pid,
    }),
  status: (s) => out({ type: 'status', ...s }),
});
process.on('SIGTERM', async () => {
  await source.stop();
  process.exit(0);
});
