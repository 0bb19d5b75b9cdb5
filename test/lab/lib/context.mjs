// The harness's view of one booted VM: devices to plug (QMP and the gadget), runtimes to start processes in,
// udevd, and the kernel's own record of each attach/detach. Scenarios only talk to this.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventLog, parseUdevLine } from './events.mjs';

/** QMP-hotpluggable devices (usb-lab.md): id prefix, QEMU driver, VID:PID as the kernel logs them. */
export const QMP_DEVICES = {
  kbd: { driver: 'usb-kbd', vid: '0627', pid: '0001' },
  storage: { driver: 'usb-storage', vid: '46f4', pid: '0001' },
  serial: { driver: 'usb-serial', vid: '0403', pid: '6001' },
};

export class LabContext {
  log = new EventLog();
  #plugs = 0;
  #storageReady = false;
  #serialReady = false;

  constructor(vm, { tmpDir, detectTimeoutMs }) {
    this.vm = vm;
    this.tmpDir = tmpDir;
    this.detectTimeoutMs = detectTimeoutMs;
    vm.on('msg', (m) => this.log.push(m));
  }

  /** A mark in the event log: what arrives after it happened after this call (console order). */
  async now() {
    await this.vm.call('ping');
    return this.log.events.length;
  }

  /**
   * The kernel stamps /dev/kmsg with local_clock(); watchers use CLOCK_MONOTONIC. Under TCG the two drift
   * apart, so each scenario measures the offset (write a line to /dev/kmsg between two clock reads) and
   * latencies are taken against the kernel timestamp mapped to CLOCK_MONOTONIC.
   */
  async syncKmsg() {
    const r = await this.vm.call('kmsgsync');
    const hit = await this.log.wait((m) => m.ev === 'kmsg' && m.msg === `replug-lab sync ${r.tag}`, 10000);
    if (!hit) throw new Error('kmsg sync line never came back');
    this.kmsgOffset = hit.ts - (r.before + r.after) / 2;
    this.kmsgSyncError = (r.after - r.before) / 2;
    return this.kmsgOffset;
  }
  kmsgOffset = 0;

  // ---- processes in a runtime ('native' | 'container') ----
  /**
   * runtime: 'native', 'container[:NAME][@RECIPE]' (a runc container from Docker's spec for RECIPE, default
   * `privileged`; one per NAME, shared by every process started in it) or 'unshare[:NAME]' (the earlier
   * hand-made namespace); net: N gives a container created by this call a veth pair (10.99.N.2 inside);
   * device: { bus, devnum } is the node a `device-node` recipe's --device names.
   */
  spawn(name, cmd, { runtime = 'native', env, json = true, net, device } = {}) {
    return this.vm.call('spawn', { name, cmd, runtime, env, json, net, device });
  }
  /** Deletes a runc container, so its NAME can start again (perhaps with another recipe). */
  stopContainer(runtime) {
    return this.vm.call('container-stop', { runtime }, 30000);
  }
  kill(name) {
    return this.vm.call('kill', { name }, 20000);
  }
  /** Lines a spawned process printed (parsed JSON when it was JSON) after guest time `since`. */
  linesOf(name, since = 0) {
    return this.log.events.filter((m) => m.ev === 'line' && m.name === name && m.idx >= since);
  }
  waitLine(name, pred, since, timeoutMs = this.detectTimeoutMs) {
    return this.log.wait(
      (m) => m.ev === 'line' && m.name === name && m.idx >= since && pred(m.data ?? m.line, m),
      timeoutMs,
    );
  }

  // ---- udevd ----
  async startUdevd() {
    await this.vm.sh(
      'pidof systemd-udevd >/dev/null || /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never',
    );
    await this.vm.sh('for i in $(seq 50); do [ -e /run/udev/control ] && exit 0; sleep 0.1; done; exit 1');
  }
  async stopUdevd() {
    // systemd 252's workers rename themselves `(udev-worker)`: waiting for `systemd-udevd` alone can return
    // while a worker still broadcasts an event it had, which a libusb started next would hear.
    await this.vm.sh(
      "killall systemd-udevd '(udev-worker)' 2>/dev/null; for i in $(seq 50); do pidof systemd-udevd '(udev-worker)' >/dev/null || exit 0; sleep 0.1; done; exit 1",
    );
    await this.vm.sh('rm -rf /run/udev');
  }

  // ---- detection sources as separate processes, per runtime ----
  async startWatchers(runtime) {
    const mark = await this.now();
    await this.spawn(`devfs-${runtime}`, ['node', '/lab/guest/watch-devfs.mjs'], { runtime });
    await this.spawn(
      `udev-${runtime}`,
      ['udevadm', 'monitor', '--kernel', '--udev', '--subsystem-match=usb/usb_device'],
      { runtime, json: false },
    );
    // udevadm prints its legend once both netlink monitors are bound; node needs seconds to start under TCG.
    const ready = await Promise.all([
      this.waitLine(`devfs-${runtime}`, (d) => d?.type === 'ready', mark, 60000),
      this.waitLine(`udev-${runtime}`, (l) => l?.startsWith('KERNEL - '), mark, 60000),
    ]);
    if (ready.some((r) => !r)) throw new Error(`watchers in the ${runtime} runtime did not start`);
  }
  async stopWatchers(runtime) {
    await this.kill(`devfs-${runtime}`);
    await this.kill(`udev-${runtime}`);
  }

  // ---- QMP devices ----
  async qmpPlug(kind) {
    const dev = QMP_DEVICES[kind];
    const id = `${kind}${++this.#plugs}`;
    const args = { driver: dev.driver, id, bus: 'xhci.0' };
    if (kind === 'storage') {
      if (!this.#storageReady) {
        const file = join(this.tmpDir, 'disk.img');
        writeFileSync(file, Buffer.alloc(1024 * 1024));
        await this.vm.qmp.execute('blockdev-add', {
          driver: 'raw',
          'node-name': 'stor0',
          file: { driver: 'file', filename: file },
        });
        this.#storageReady = true;
      }
      args.drive = 'stor0';
      args.serial = 'lab-storage';
    }
    if (kind === 'serial') {
      // A `null` chardev never attaches; a ringbuf does (usb-lab.md).
      if (!this.#serialReady) {
        await this.vm.qmp.execute('chardev-add', {
          id: 'ser0',
          backend: { type: 'ringbuf', data: { size: 4096 } },
        });
        this.#serialReady = true;
      }
      args.chardev = 'ser0';
    }
    await this.vm.qmp.execute('device_add', args);
    return { id, ...dev };
  }
  async qmpUnplug(id) {
    const deleted = this.vm.qmp.waitEvent(
      (e) => e.event === 'DEVICE_DELETED' && e.data?.device === id,
      20000,
    );
    await this.vm.qmp.execute('device_del', { id });
    await deleted;
  }

  // ---- the gadget (dummy_hcd + configfs Loopback) ----
  gadgetSetup(vid, pid, serial) {
    return this.vm.sh(`/lab/guest/gadget.sh setup ${vid} ${pid} ${serial}`);
  }
  gadgetPlug() {
    return this.vm.sh('/lab/guest/gadget.sh plug');
  }
  gadgetUnplug() {
    return this.vm.sh('/lab/guest/gadget.sh unplug');
  }

  // ---- the kernel's record (/dev/kmsg) ----
  /**
   * Waits for the kernel to announce a device with vid:pid after `since` and returns
   * { ts, port, bus, devnum } where ts is the kernel's timestamp of "New USB device found" (on CLOCK_MONOTONIC),
   * logged just before the device is added and its uevent sent.
   */
  async kernelAttach(vid, pid, since, timeoutMs = this.detectTimeoutMs) {
    const re = new RegExp(`^usb (\\S+): New USB device found, idVendor=${vid}, idProduct=${pid}`);
    const hit = await this.log.wait((m) => m.ev === 'kmsg' && m.idx >= since && re.test(m.msg), timeoutMs);
    if (!hit) return null;
    const port = hit.msg.match(re)[1];
    const numbered = [...this.log.events]
      .reverse()
      .find((m) => m.ev === 'kmsg' && m.ts <= hit.ts && m.msg.startsWith(`usb ${port}: new `));
    const devnum = Number(numbered?.msg.match(/device number (\d+)/)?.[1]);
    return { ts: hit.ts - this.kmsgOffset, port, bus: Number(port.split('-')[0]), devnum };
  }
  async kernelDetach(port, since, timeoutMs = this.detectTimeoutMs) {
    const hit = await this.log.wait(
      (m) => m.ev === 'kmsg' && m.idx >= since && m.msg.startsWith(`usb ${port}: USB disconnect`),
      timeoutMs,
    );
    return hit ? { ts: hit.ts - this.kmsgOffset } : null;
  }

  /** When each watcher in `runtime` saw the device at `port`/`bus`/`devnum` added or removed, after `since`. */
  async sightings(
    runtime,
    { action, port, bus, devnum },
    since,
    timeoutMs = this.detectTimeoutMs,
    udevGraceMs = 3000,
  ) {
    const node = `/dev/bus/usb/${String(bus).padStart(3, '0')}/${String(devnum).padStart(3, '0')}`;
    const devfs = this.waitLine(
      `devfs-${runtime}`,
      (d) => d?.path === node && d.type === action,
      since,
      timeoutMs,
    );
    const udev = (src, ms) =>
      this.waitLine(
        `udev-${runtime}`,
        (line) => {
          const u = parseUdevLine(line);
          return u?.src === src && u.action === action && u.devpath.endsWith(`/${port}`);
        },
        since,
        ms,
      );
    const [d, k] = await Promise.all([devfs, udev('KERNEL', timeoutMs)]);
    // udev's broadcast follows the kernel's within a second or two here; where it never comes (own netns)
    // waiting the full timeout every cycle would only slow the lab down.
    const u = await udev('UDEV', udevGraceMs);
    return {
      devfs: d ? d.data.t : null,
      uevent: k ? parseUdevLine(k.line).t : null,
      udev: u ? parseUdevLine(u.line).t : null,
    };
  }
}
