// The agent scenarios (issue 5): `replug agent` natively and in the container-like namespace at the same time,
// each with its own --id and --runtime-label, both publishing to a broker inside the VM (TCP: loopback for the
// native one, the container's veth pair for the other), and `replug watch --json` collecting what reached the
// broker. Every cycle plugs each runtime's target(s), waits for the session to come up on the address the
// kernel gave, unplugs, and waits for the session to end. A scenario fails unless both runtimes reconnect N/N.
//
// Each runtime has its own device(s), told apart by serial number (QEMU's `serial` property, the gadget's
// serialnumber): two agents cannot both claim interface 0 of one device, just as two containers could not.
// Both agents still see every plug (detection is not filtered by target), only the session is per serial.
// QMP devices for both runtimes are plugged together; the gadget (one UDC) is plugged once per runtime.
//
// Timings: the kernel's "New USB device found" line (/dev/kmsg, CLOCK_MONOTONIC via ctx.kmsgOffset) against
//  - per detection source: the agent's first sighting (its `device discovered` log line, on the lab agent's
//    clock as it arrives through the pipe) plus that source's latency from the agent's device.detection report;
//  - session up: the agent's `session ... up` log line.
// The session's address comes from the session.state event the broker received (watch), so a row counts a
// reconnect only when MQTT carried it too.
import { stats } from '../lib/events.mjs';
import { log } from '../lib/util.mjs';

const REPLUG = ['node', '/replug/dist/src/bin/replug.js'];
/** This file's own container and veth pair, so other scenarios' containers and nets are left alone. */
const CONTAINER = 'container:agent';
const NET = 7;
const PORT = 18837;
const SOCK = '/var/lab/agent-broker.sock';
const RUNTIMES = ['native', 'container'];
const BROKER_URL = { native: `mqtt://127.0.0.1:${PORT}`, container: `mqtt://10.99.${NET}.1:${PORT}` };
/** A session must come up within this after the kernel's attach, and end within this after its detach. */
const UP_TIMEOUT_MS = 30000;
const DOWN_TIMEOUT_MS = 20000;

const GADGET = { vid: '1209', pid: '0005' };
const QMP = {
  kbd: { driver: 'usb-kbd', vid: '0627', pid: '0001' },
  serial: { driver: 'usb-serial', vid: '0403', pid: '6001' },
  storage: { driver: 'usb-storage', vid: '46f4', pid: '0001' },
};

const rtSpawn = (rt) => (rt === 'native' ? 'native' : CONTAINER);
const proc = (rt) => `agent-${rt}`;
const agentId = (rt) => `lab-${rt}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One-time QEMU objects this file adds (chardevs, drives), per VM run. */
const made = new Set();
let plugs = 0;

/** A device slot: one kind for one runtime, with a serial of its own. */
function slot(kind, rt) {
  const dev = kind === 'gadget' ? GADGET : QMP[kind];
  const serial = `lab-${kind}-${rt}`;
  return { kind, rt, serial, vid: dev.vid, pid: dev.pid, key: `${dev.vid}:${dev.pid}:${serial}` };
}

async function plug(ctx, s) {
  if (s.kind === 'gadget') {
    await ctx.gadgetSetup(`0x${s.vid}`, `0x${s.pid}`, s.serial);
    await ctx.gadgetPlug();
    return { kind: 'gadget' };
  }
  const id = `ag${s.kind}${++plugs}`;
  const args = { driver: QMP[s.kind].driver, id, bus: 'xhci.0', serial: s.serial };
  if (s.kind === 'serial') {
    const cd = `agser-${s.rt}`;
    if (!made.has(cd)) {
      await ctx.vm.qmp.execute('chardev-add', { id: cd, backend: { type: 'ringbuf', data: { size: 4096 } } });
      made.add(cd);
    }
    args.chardev = cd;
  }
  if (s.kind === 'storage') {
    const node = `agstor-${s.rt}`;
    if (!made.has(node)) {
      const { writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const file = join(ctx.tmpDir, `${node}.img`);
      writeFileSync(file, Buffer.alloc(1024 * 1024));
      await ctx.vm.qmp.execute('blockdev-add', {
        driver: 'raw',
        'node-name': node,
        file: { driver: 'file', filename: file },
      });
      made.add(node);
    }
    args.drive = node;
  }
  await ctx.vm.qmp.execute('device_add', args);
  return { kind: s.kind, id };
}

function unplug(ctx, handle) {
  return handle.kind === 'gadget' ? ctx.gadgetUnplug() : ctx.qmpUnplug(handle.id);
}

/**
 * The kernel's attach of the device with this serial after `since`: { ts, port, bus, devnum }, ts being the
 * "New USB device found" line's timestamp on CLOCK_MONOTONIC. (ctx.kernelAttach matches VID:PID only, and two
 * devices with one VID:PID are plugged at once here.)
 */
async function attachOf(ctx, s, since, timeoutMs = ctx.detectTimeoutMs) {
  const serialLine = await ctx.log.wait(
    (m) =>
      m.ev === 'kmsg' &&
      m.idx >= since &&
      /^usb \S+: SerialNumber: /.test(m.msg) &&
      m.msg.endsWith(`: ${s.serial}`),
    timeoutMs,
  );
  if (!serialLine) return null;
  const port = serialLine.msg.match(/^usb (\S+):/)[1];
  const before = ctx.log.events.slice(since, serialLine.idx).reverse();
  const found = before.find(
    (m) =>
      m.ev === 'kmsg' &&
      m.msg.startsWith(`usb ${port}: New USB device found, idVendor=${s.vid}, idProduct=${s.pid}`),
  );
  const numbered = before.find((m) => m.ev === 'kmsg' && m.msg.startsWith(`usb ${port}: new `));
  if (!found || !numbered) return null;
  return {
    ts: found.ts - ctx.kmsgOffset,
    port,
    bus: Number(port.split('-')[0]),
    devnum: Number(numbered.msg.match(/device number (\d+)/)?.[1]),
  };
}

/** What the broker received, through `replug watch --json`: event payloads of one agent. */
function watchEvent(ctx, rt, pred, since, timeoutMs) {
  return ctx.waitLine(
    'agent-watch',
    (d) => d?.kind === 'event' && d.agent === agentId(rt) && d.payload && pred(d.payload),
    since,
    timeoutMs,
  );
}

/**
 * @param name     scenario name
 * @param kinds    device kinds each runtime targets: 'kbd' | 'serial' | 'storage' | 'gadget'
 * @param udevd    run udevd during the scenario
 * @param driver   'default' (open, claim interface 0, GET_DESCRIPTOR; with --detach-kernel-driver) or 'bulk'
 *                 (examples/drivers/bulk-loopback.mjs, probing back to back: continuous bulk I/O)
 * @param ioMs     how long the session runs before the unplug (bulk I/O in flight when it lands)
 * @param newAddress fail unless every replug comes back at a different address than the cycle before
 */
export function agentScenario({
  name,
  kinds,
  udevd = true,
  driver = 'default',
  ioMs = 0,
  newAddress = false,
  describe,
}) {
  const slots = Object.fromEntries(RUNTIMES.map((rt) => [rt, kinds.map((k) => slot(k, rt))]));
  const all = RUNTIMES.flatMap((rt) => slots[rt]);
  const gadgetOnly = kinds.every((k) => k === 'gadget');
  return {
    name,
    runtimes: RUNTIMES,
    describe:
      describe ??
      `replug agent (${driver} driver) natively and in a container, targets ${kinds.join(' + ')}, udevd ${udevd ? 'running' : 'stopped'}`,

    async setup(ctx, st) {
      st.rows = Object.fromEntries(RUNTIMES.map((rt) => [rt, []]));
      st.startMark = await ctx.now();
      if (udevd) await ctx.startUdevd();
      else await ctx.stopUdevd();
      // The container (and its veth pair) first: the broker listens on the guest side of it.
      await ctx.vm.sh('true', { runtime: CONTAINER, net: NET });
      let mark = await ctx.now();
      await ctx.spawn('agent-broker', [
        'node',
        '/lab/guest/broker.mjs',
        SOCK,
        `127.0.0.1:${PORT}`,
        `10.99.${NET}.1:${PORT}`,
      ]);
      if (!(await ctx.waitLine('agent-broker', (d) => d?.ready, mark, 60000)))
        throw new Error('broker did not start');
      mark = await ctx.now();
      await ctx.spawn('agent-watch', [...REPLUG, 'watch', '--json', '--mqtt', BROKER_URL.native]);
      const driverArgs =
        driver === 'bulk' ? ['--driver', '/lab/guest/bulk-loopback-busy.mjs'] : ['--detach-kernel-driver'];
      for (const rt of RUNTIMES) {
        await ctx.spawn(
          proc(rt),
          [
            ...REPLUG,
            'agent',
            '--id',
            agentId(rt),
            '--runtime-label',
            rt,
            '--mqtt',
            BROKER_URL[rt],
            '--state-dir',
            `/tmp/replug-state-${name}-${rt}`,
            '--log-format',
            'json',
            // Under TCG with four node processes on one vCPU a source can lag the first by seconds.
            '--settle',
            '5000',
            ...slots[rt].flatMap((s) => ['--target', s.key]),
            ...driverArgs,
          ],
          { runtime: rtSpawn(rt) },
        );
      }
      for (const rt of RUNTIMES) {
        const started = await ctx.waitLine(
          proc(rt),
          (d) => typeof d?.msg === 'string' && d.msg.startsWith(`agent ${agentId(rt)} started`),
          mark,
          // Four node processes and runc exec on one TCG vCPU of a loaded host: starting can take minutes.
          180000,
        );
        if (!started) throw new Error(`agent (${rt}) did not start: ${lastLines(ctx, proc(rt), mark)}`);
        const online = await ctx.waitLine('agent-watch', (d) => d?.agent === agentId(rt), mark, 30000);
        if (!online) throw new Error(`nothing from agent (${rt}) reached the broker`);
      }
      st.agentsMark = mark;
    },

    async cycle(ctx, st, i) {
      // QMP devices: every runtime's plugged together. The gadget: one runtime after the other.
      const groups = gadgetOnly ? RUNTIMES.map((rt) => slots[rt]) : [all];
      const rec = Object.fromEntries(RUNTIMES.map((rt) => [rt, { cycle: i, devices: [] }]));
      for (const group of groups) {
        const mark = await ctx.now();
        const handles = [];
        st.live = handles;
        for (const s of group) handles.push(await plug(ctx, s));
        const attached = [];
        for (const s of group) {
          const ka = await attachOf(ctx, s, mark);
          if (!ka) throw new Error(`kernel never announced ${s.key}`);
          attached.push(ka);
        }
        for (const [j, s] of group.entries()) {
          const ka = attached[j];
          const up = await ctx.waitLine(
            proc(s.rt),
            (d) => d?.event === 'session.state' && d.target === s.key && d.state === 'up',
            mark,
            UP_TIMEOUT_MS,
          );
          const upMqtt = await watchEvent(
            ctx,
            s.rt,
            (p) => p.type === 'session.state' && p.target === s.key && p.state === 'up',
            mark,
            up ? 10000 : 0,
          );
          const first = await ctx.waitLine(
            proc(s.rt),
            (d) => d?.event === 'device.added' && d.device?.bus === ka.bus && d.device?.address === ka.devnum,
            mark,
            up ? 5000 : 0,
          );
          rec[s.rt].devices.push({
            key: s.key,
            kernel: ka,
            up: Boolean(up),
            upAddress: upMqtt?.data.payload.device?.address ?? null,
            attachToUpMs: up ? up.t - ka.ts : null,
            firstSightingMs: first ? first.t - ka.ts : null,
            firstSource: first?.data.source ?? null,
          });
        }
        if (ioMs) await sleep(ioMs);
        const mark2 = await ctx.now();
        for (const h of handles) await unplug(ctx, h);
        st.live = [];
        for (const [j, s] of group.entries()) {
          const d = rec[s.rt].devices.find((x) => x.key === s.key);
          const kd = await ctx.kernelDetach(attached[j].port, mark2);
          // Ended cleanly: back to waiting for the device (driver closed), within the timeout, process alive.
          const down = await ctx.waitLine(
            proc(s.rt),
            (l) => l?.event === 'session.state' && l.target === s.key && l.state === 'waiting',
            mark2,
            DOWN_TIMEOUT_MS,
          );
          d.detachToDownMs = down && kd ? down.t - kd.ts : null;
          d.down = Boolean(down);
          d.downReason = down?.data.reason ?? null;
          if (driver === 'bulk') {
            const closed = await ctx.waitLine(
              proc(s.rt),
              (l) => l?.lab === 'bulk' && l.ev === 'close' && l.address === attached[j].devnum,
              mark2,
              down ? 5000 : 0,
            );
            const opened = ctx
              .linesOf(proc(s.rt), mark)
              .some(
                (m) =>
                  m.data?.lab === 'bulk' && m.data.ev === 'open' && m.data.address === attached[j].devnum,
              );
            // The agent bounds a driver's close; a close the usb package never finishes is reported, not hung on.
            const closeTimedOut = ctx
              .linesOf(proc(s.rt), mark2)
              .some((m) => m.data?.msg === 'driver close failed; continuing');
            d.bulk = {
              opened,
              loopbacks: closed?.data.loopbacks ?? null,
              failed: closed?.data.failed ?? null,
              closeTimedOut,
            };
          }
        }
      }
      for (const rt of RUNTIMES) st.rows[rt].push(rec[rt]);
    },

    async check(ctx, st) {
      const detections = ctx.log.events.filter(
        (m) =>
          m.ev === 'line' &&
          m.name === 'agent-watch' &&
          m.idx >= st.agentsMark &&
          m.data?.kind === 'event' &&
          m.data.payload?.type === 'device.detection' &&
          m.data.payload.kind === 'added',
      );
      const exits = ctx.log.events.filter(
        (m) => m.ev === 'exit' && m.idx >= st.startMark && RUNTIMES.some((rt) => m.name === proc(rt)),
      );
      return RUNTIMES.map((rt) => {
        const devs = st.rows[rt].flatMap((r) => r.devices);
        const problems = [];
        const ok = (d) => d.up && d.upAddress === d.kernel.devnum && d.down;
        const cycles = st.rows[rt].length;
        const reconnects = st.rows[rt].filter((r) => r.devices.every(ok)).length;
        if (reconnects !== cycles) problems.push(`reconnected ${reconnects}/${cycles}`);
        for (const d of devs) {
          if (!d.up)
            problems.push(`${d.key} at ${d.kernel.port} (address ${d.kernel.devnum}): no session up`);
          else if (d.upAddress !== d.kernel.devnum)
            problems.push(
              `${d.key}: broker saw session up at address ${d.upAddress}, kernel gave ${d.kernel.devnum}`,
            );
          if (d.up && !d.down)
            problems.push(`${d.key}: session did not end within ${DOWN_TIMEOUT_MS} ms of the unplug`);
        }
        if (newAddress) {
          for (const s of slots[rt]) {
            const addrs = devs.filter((d) => d.key === s.key).map((d) => d.kernel.devnum);
            const same = addrs.filter((a, k) => k > 0 && a === addrs[k - 1]).length;
            if (same)
              problems.push(`${s.key} came back at the same address ${same} time(s): ${addrs.join(',')}`);
          }
        }
        if (driver === 'bulk') {
          // open() itself does one 4096-byte loopback, so an opened session did bulk I/O.
          const io = devs.filter((d) => d.bulk?.opened).length;
          if (io !== devs.length) problems.push(`bulk I/O ran in ${io}/${devs.length} sessions`);
        }
        for (const e of exits.filter((m) => m.name === proc(rt)))
          problems.push(`agent exited (code ${e.code}, signal ${e.signal})`);
        // Detection per source against the kernel: first sighting + the source's lag behind the first.
        const per = { devfs: [], sysfs: [], nusb: [], uevent: [] };
        const missed = {};
        for (const d of devs.filter((x) => x.firstSightingMs != null)) {
          const rep = detections.find(
            (m) =>
              m.data.agent === agentId(rt) &&
              m.data.payload.bus === d.kernel.bus &&
              m.data.payload.address === d.kernel.devnum,
          )?.data.payload;
          if (!rep) continue;
          for (const [src, ms] of Object.entries(rep.latencyMs)) per[src]?.push(d.firstSightingMs + ms);
          for (const src of rep.missedBy) missed[src] = (missed[src] ?? 0) + 1;
        }
        const latencyMs = {
          devfs: stats(per.devfs),
          sysfs: stats(per.sysfs),
          nusb: stats(per.nusb),
          uevent: stats(per.uevent),
          // The table's udev column: nusb's hotplug events are udevd's broadcasts (netlink group 2).
          udev: stats(per.nusb),
        };
        const attachToUpMs = stats(devs.map((d) => d.attachToUpMs));
        const detachToDownMs = stats(devs.map((d) => d.detachToDownMs));
        const fmt = (s) => (s ? `${s.p50}/${s.max}` : '-');
        const bulkNote =
          driver === 'bulk'
            ? `; bulk: loopbacks per session ${devs.map((d) => d.bulk?.loopbacks ?? '?').join(',')}, close timed out ${devs.filter((d) => d.bulk?.closeTimedOut).length}/${devs.length}`
            : '';
        log(
          `  ${name} [${rt}]: kmsg->devfs ${fmt(latencyMs.devfs)}, sysfs ${fmt(latencyMs.sysfs)}, nusb ${fmt(latencyMs.nusb)}, uevent ${fmt(latencyMs.uevent)}; attach->up ${fmt(attachToUpMs)}, detach->down ${fmt(detachToDownMs)}; missed by ${JSON.stringify(missed)}${bulkNote}`,
        );
        return {
          runtime: rt,
          cycles,
          reconnects,
          latencyMs,
          missedBy: missed,
          attachToUpMs,
          detachToDownMs,
          addresses: Object.fromEntries(
            slots[rt].map((s) => [s.key, devs.filter((d) => d.key === s.key).map((d) => d.kernel.devnum)]),
          ),
          downReasons: [...new Set(devs.map((d) => d.downReason).filter(Boolean))],
          bulk: driver === 'bulk' ? devs.map((d) => d.bulk) : undefined,
          ok: problems.length === 0,
          problems,
        };
      });
    },

    async teardown(ctx, st) {
      for (const rt of RUNTIMES) await ctx.kill(proc(rt));
      await ctx.kill('agent-watch');
      await ctx.kill('agent-broker');
      for (const h of st.live ?? []) await unplug(ctx, h).catch(() => {});
      if (gadgetOnly) await ctx.gadgetUnplug().catch(() => {});
      if (!udevd) await ctx.startUdevd();
    },
  };
}

function lastLines(ctx, name, since) {
  return ctx
    .linesOf(name, since)
    .slice(-3)
    .map((m) => m.line ?? m.data?.msg ?? JSON.stringify(m.data))
    .join(' | ');
}

export function agentScenarios() {
  return [
    agentScenario({ name: 'agent-udevd', kinds: ['kbd'] }),
    agentScenario({ name: 'agent-no-udevd', kinds: ['kbd'], udevd: false }),
    agentScenario({ name: 'agent-gadget-io', kinds: ['gadget'], driver: 'bulk', ioMs: 1500 }),
    agentScenario({ name: 'agent-new-address', kinds: ['storage'], newAddress: true }),
    agentScenario({ name: 'agent-two-targets', kinds: ['kbd', 'serial'] }),
  ];
}
