// replug's own kernel-uevent source (dist/src/usb/sources/uevent.js, group 1) as a watcher process: prints
// one JSON line per usb_device added or removed, stamped with CLOCK_MONOTONIC when the source reported it.
import { UeventSource } from '/replug/dist/src/usb/sources/uevent.js';

const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const source = new UeventSource();
await source.start({
  event: (ev) =>
    out({
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
