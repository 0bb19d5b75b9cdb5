// The floor under `replug agent`'s reconnect (issue 17, goal 1): the default driver's own steps through usb@3,
// alone in the VM (udevd runs; no agent, broker, control or watcher). On each new node in /dev/bus/usb/001:
// the serial readable in sysfs (it waits for the kernel's device lock, held through the driver probe), then
// usb@3's listing, open, kernel driver detach, claim of interface 0 and GET_DESCRIPTOR, as the probe driver
// does them (src/session/drivers/probe.ts). One JSON line per plug, `t` on CLOCK_MONOTONIC like the lab's.

import { existsSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';

const mod = await import('/replug/node_modules/usb/dist/index.js');
const usb = mod.usb ?? mod.default?.usb;
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const BUS = '/dev/bus/usb/001';
const GET_DEVICE_DESCRIPTOR = {
  requestType: 'standard',
  recipient: 'device',
  request: 6,
  value: 0x100,
  index: 0,
};

async function follow(address) {
  const at = { node: mono() };
  // /sys/dev/char/189:<minor>, minor = (bus - 1) * 128 + address - 1: this bus is 1.
  const sys = `/sys/dev/char/189:${address - 1}`;
  const serial = readFile(`${sys}/serial`, 'utf8').then(
    () => {
      at.serial = mono();
    },
    () => undefined,
  );
  try {
    let device;
    for (let i = 0; i < 200 && !device; i++) {
      device = (await usb.getDevices()).find((d) => d.address === address);
      at.listed = mono();
    }
    if (!device) throw new Error('usb@3 never listed it');
    await device.open();
    at.usbfs = mono();
    await device.detachKernelDriver(0).catch(() => undefined);
    at.detached = mono();
    await device.claimInterface(0);
    at.claimed = mono();
    const r = await device.controlTransferIn(GET_DEVICE_DESCRIPTOR, 18, 1000);
    if (r.status !== 'ok') throw new Error(`GET_DESCRIPTOR ${r.status}`);
    at.verified = mono();
    await device.close();
    await serial;
    out({ ev: 'floor', address, ok: true, at });
  } catch (err) {
    out({ ev: 'floor', address, ok: false, error: String(err?.message ?? err), at });
  }
}

watch(BUS, (kind, name) => {
  if (kind !== 'rename' || !/^\d{3}$/.test(name ?? '') || !existsSync(`${BUS}/${name}`)) return;
  void follow(Number(name));
});
out({ ev: 'ready' });
