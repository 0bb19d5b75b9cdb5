// `replug relay` (issue 7) on the real kernel.
//
// relay-capture-kbd[-norules]: natively, with systemd-udevd running (Debian's rules, or none), records the
//   kernel's (group 1) and udevd's (group 2) datagrams for QMP usb-kbd plug/unplug and checks that our encoder,
//   given the kernel message and udevd's USEC_INITIALIZED, gives what libudev/libusb/nusb check exactly: the
//   header (magic, sizes, subsystem/devtype hashes), ACTION, DEVPATH, SUBSYSTEM, DEVTYPE, DEVNAME, BUSNUM,
//   DEVNUM, SEQNUM, MAJOR, MINOR. The capture is written to test/lab/results/usb-capture-<name>.json in the
//   format of test/fixtures/uevent (the byte-for-byte unit tests run on a copy there).
// relay-container: in a container-like namespace (no udevd broadcast reaches it), `replug relay` runs, then
//   the libusb control (usb v2) and a usb v3 listener in the same container: both reconnect N/N. Latency of
//   the sources seen in that container: devfs inotify, replug's kernel-uevent source, the relayed broadcast.
// relay-container-stopped: the same processes after the relay is stopped: the control fails again (0/N),
//   so the relay, not something else, made them reconnect.
// relay-refuses-beside-udevd: natively with udevd running, `replug relay` exits 1 with
//   REPLUG_RELAY_UDEV_PRESENT.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QMP_DEVICES } from '../lib/context.mjs';
import { stats } from '../lib/events.mjs';
import { ensureDir, RESULTS_DIR } from '../lib/util.mjs';

const REPLUG = ['node', '/replug/dist/src/bin/replug.js'];
/** Fields libudev (sd-device), libusb's udev backend and nusb read from a udev message. */
const KEY_FIELDS = [
  'ACTION',
  'DEVPATH',
  'SUBSYSTEM',
  'DEVTYPE',
  'DEVNAME',
  'BUSNUM',
  'DEVNUM',
  'SEQNUM',
  'MAJOR',
  'MINOR',
];
const UDEV_PRESENT_LINE = 'a udevd already broadcasts in this network namespace';
/** Those expected to fail wait this long for what must not come (control.mjs does the same). */
const FAIL_WAIT_MS = 4000;

const envFor = (dev) => ({
  TEST_VID: String(Number.parseInt(dev.vid, 16)),
  TEST_PID: String(Number.parseInt(dev.pid, 16)),
});

// The host's build of the encoder (run.mjs builds before it boots), loaded when first needed: importing dist/
// at load time would break the lab's start on a checkout that has not been built yet.
let codec;
async function loadCodec() {
  codec ??= {
    ...(await import('../../../dist/src/relay/udev-message.js')),
    ...(await import('../../../dist/src/usb/kernel/uevent.js')),
  };
  return codec;
}

function decodeCaptured(line) {
  const { decodeUdevMessage, parseKernelUevent } = codec;
  const buf = Buffer.from(line.hex, 'hex');
  if (line.group === 1) {
    const ev = parseKernelUevent(buf);
    return ev ? { kind: 'kernel', props: ev.properties, ev, buf } : null;
  }
  const d = decodeUdevMessage(buf, true);
  return d ? { kind: 'udev', props: d.properties, header: d, buf } : null;
}

/** Compares our encoding of each kernel message with udevd's message of the same SEQNUM. */
export async function compareCapture(captured) {
  const { decodeUdevMessage, encodeUdevMessage, udevPropertiesFor } = await loadCodec();
  const msgs = captured.map(decodeCaptured).filter(Boolean);
  const kernel = msgs.filter((m) => m.kind === 'kernel' && m.props.get('SUBSYSTEM') === 'usb');
  const udevd = msgs.filter((m) => m.kind === 'udev' && m.props.get('SUBSYSTEM') === 'usb');
  const pairs = [];
  const problems = [];
  for (const k of kernel) {
    const seq = k.props.get('SEQNUM');
    const u = udevd.find((m) => m.props.get('SEQNUM') === seq);
    const label = `${k.ev.action} ${k.props.get('DEVTYPE')} ${k.ev.devpath.split('/').pop()} #${seq}`;
    if (!u) {
      problems.push(`no udevd message for ${label}`);
      continue;
    }
    const ours = encodeUdevMessage(
      udevPropertiesFor(k.ev, { usecInitialized: BigInt(u.props.get('USEC_INITIALIZED') ?? 0) }),
      { littleEndian: true },
    );
    const o = decodeUdevMessage(ours, true);
    const diff = [];
    for (const f of ['headerSize', 'subsystemHash', 'devtypeHash'])
      if (o[f] !== u.header[f]) diff.push(`header ${f} ${o[f]} != ${u.header[f]}`);
    if (ours.readUInt32BE(8) !== u.buf.readUInt32BE(8)) diff.push('magic');
    for (const f of KEY_FIELDS)
      if (o.properties.get(f) !== u.props.get(f))
        diff.push(`${f} ${o.properties.get(f)} != ${u.props.get(f)}`);
    const added = [...u.props.keys()].filter((key) => !o.properties.has(key));
    pairs.push({
      label,
      diff,
      udevdAdds: added,
      bloom: u.header.tagBloomHi !== 0 || u.header.tagBloomLo !== 0,
    });
    if (diff.length) problems.push(`${label}: ${diff.join('; ')}`);
  }
  return { pairs, problems, kernelCount: kernel.length, udevdCount: udevd.length };
}

export function relayCaptureScenario(kind = 'kbd', { rules = true } = {}) {
  const dev = QMP_DEVICES[kind];
  const name = `relay-capture-${kind}${rules ? '' : '-norules'}`;
  const proc = `capture-${name}`;
  const udevdMsg = (action) => (d) =>
    d?.group === 2 &&
    (() => {
      const m = decodeCaptured(d);
      return m?.props.get('ACTION') === action && m.props.get('DEVTYPE') === 'usb_device';
    })();
  return {
    name,
    runtimes: ['native'],
    describe: `kernel + systemd-udevd (${rules ? "Debian's rules" : 'no rules'}) datagrams for QMP ${dev.driver} plug/unplug vs our encoder`,

    async setup(ctx, st) {
      await loadCodec();
      await ctx.stopUdevd();
      if (rules) await ctx.startUdevd();
      else {
        // A private mount namespace whose rules directories are empty: udevd changes nothing, adds nothing.
        await ctx.vm.sh(
          'mkdir -p /etc/udev/rules.d; unshare -m sh -c "mount -t tmpfs tmpfs /usr/lib/udev/rules.d && mount -t tmpfs tmpfs /etc/udev/rules.d && exec /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never"',
        );
        await ctx.vm.sh('for i in $(seq 50); do [ -e /run/udev/control ] && exit 0; sleep 0.1; done; exit 1');
      }
      const mark = await ctx.now();
      await ctx.spawn(proc, ['node', '/lab/guest/capture-uevents.mjs', '1,2']);
      if (!(await ctx.waitLine(proc, (d) => d?.type === 'ready', mark, 60000)))
        throw new Error('capture did not start');
      st.mark = mark;
      st.cycles = 0;
      st.seen = 0;
    },

    async cycle(ctx, st) {
      st.cycles++;
      const since = await ctx.now();
      const plugged = await ctx.qmpPlug(kind);
      const ka = await ctx.kernelAttach(dev.vid, dev.pid, since);
      const add = await ctx.waitLine(proc, udevdMsg('add'), since);
      const since2 = await ctx.now();
      await ctx.qmpUnplug(plugged.id);
      if (ka) await ctx.kernelDetach(ka.port, since2);
      const rm = await ctx.waitLine(proc, udevdMsg('remove'), since2);
      if (ka && add && rm) st.seen++;
    },

    async check(ctx, st) {
      // udevd's messages for the interfaces follow the device's: give them a moment to arrive.
      await new Promise((r) => setTimeout(r, 1500));
      const captured = ctx
        .linesOf(proc, st.mark)
        .filter((l) => l.data?.hex)
        .map((l) => ({ group: l.data.group, port: l.data.port, hex: l.data.hex }));
      ensureDir(RESULTS_DIR);
      writeFileSync(join(RESULTS_DIR, `usb-capture-${name}.json`), `${JSON.stringify(captured, null, 1)}\n`);
      const cmp = await compareCapture(captured);
      const problems = [...cmp.problems];
      if (st.seen !== st.cycles)
        problems.push(`udevd broadcast add+remove for ${st.seen}/${st.cycles} plugs`);
      const adds = [...new Set(cmp.pairs.flatMap((p) => p.udevdAdds))].sort();
      return [
        {
          runtime: 'native',
          cycles: st.cycles,
          reconnects: st.seen,
          messages: `${cmp.kernelCount} kernel, ${cmp.udevdCount} udevd (usb)`,
          keyFieldsEqual: `${cmp.pairs.filter((p) => p.diff.length === 0).length}/${cmp.pairs.length}`,
          udevdAddsBeyondOurs: adds,
          ok: problems.length === 0,
          problems,
        },
      ];
    },

    async teardown(ctx) {
      await ctx.kill(proc);
      if (!rules) {
        await ctx.stopUdevd();
        await ctx.startUdevd();
      }
    },
  };
}

/**
 * relay-container and relay-container-stopped share one container ('container:relay') and its processes: the
 * first starts them, the second stops the relay and keeps the rest; either starts them when run alone.
 */
export function relayContainerScenarios(kind = 'kbd', { sidecar = false } = {}) {
  const dev = QMP_DEVICES[kind];
  // Without sidecar: one container (the seed's recipe) runs the relay and the apps. With it (issue 16),
  // docs/relay.md's recipe: the apps in the `app` container, `replug relay` in a second container made from
  // `docker run --network container:APP --cap-add NET_ADMIN -v replug-udev:/run/udev`: two runc
  // containers sharing one network namespace and the /run/udev volume.
  const RT = sidecar ? 'container:relay-app@app' : 'container:relay';
  const RT_RELAY = sidecar ? 'container:relay-side@relay-sidecar' : RT;
  const tag = sidecar ? 'sidecar' : 'container';
  const P = {
    relay: `relay-ct-${tag}`,
    v2: `control-relay-${tag}`,
    v3: `v3-relay-${tag}`,
    uevent: `uevent-${RT}`,
  };
  const shared = { started: false, plugged: null, attach: null };

  async function startApps(ctx) {
    if (shared.started) return;
    await ctx.startUdevd(); // the host's udevd: its broadcasts stay in the guest's root netns
    const since = await ctx.now();
    shared.plugged = await ctx.qmpPlug(kind);
    shared.attach = await ctx.kernelAttach(dev.vid, dev.pid, since);
    if (!shared.attach) throw new Error('initial plug not seen by the kernel');
    // The relay first (it creates /run/udev/control, which libudev checks when a monitor starts), then the apps.
    if (sidecar) await ctx.vm.sh('true', { runtime: RT }); // the app container first: the sidecar joins its netns
    const m0 = await ctx.now();
    await ctx.spawn(P.relay, [...REPLUG, 'relay'], { runtime: RT_RELAY });
    const up = await ctx.waitLine(
      P.relay,
      (l) => typeof l === 'string' && l.includes('re-broadcasting'),
      m0,
      60000,
    );
    if (!up)
      throw new Error(
        `replug relay did not start: ${ctx
          .linesOf(P.relay, m0)
          .map((l) => l.line ?? JSON.stringify(l.data))
          .join(' | ')}`,
      );
    shared.controlFile = (
      await ctx.vm.sh('cat /run/udev/control', { runtime: RT, check: false })
    ).stdout.trim();
    await ctx.startWatchers(RT);
    const m1 = await ctx.now();
    await ctx.spawn(P.uevent, ['node', '/lab/guest/watch-uevent.mjs'], { runtime: RT });
    await ctx.spawn(P.v2, ['node', '/lab/control/control.mjs'], { runtime: RT, env: envFor(dev) });
    await ctx.spawn(P.v3, ['node', '/lab/control/listener-v3.mjs'], { runtime: RT, env: envFor(dev) });
    const ready = await Promise.all([
      ctx.waitLine(P.uevent, (d) => d?.type === 'status' && d.state === 'active', m1, 120000),
      ctx.waitLine(P.v2, (d) => d?.ev === 'open', m1, 60000),
      ctx.waitLine(P.v3, (d) => d?.ev === 'start', m1, 60000),
    ]);
    if (!ready[0]) throw new Error('the kernel-uevent source did not become active in the container');
    if (!ready[1]?.data.ok)
      throw new Error(`control could not open the initial device: ${JSON.stringify(ready[1]?.data)}`);
    if (!ready[2]) throw new Error('usb v3 listener did not start');
    shared.started = true;
  }

  async function stopAll(ctx) {
    for (const p of [P.v2, P.v3, P.uevent, P.relay]) await ctx.kill(p).catch(() => {});
    await ctx.stopWatchers(RT).catch(() => {});
    if (sidecar) {
      await ctx.stopContainer(RT_RELAY).catch(() => {});
      await ctx.stopContainer(RT).catch(() => {});
    }
    if (shared.plugged) await ctx.qmpUnplug(shared.plugged.id).catch(() => {});
    shared.plugged = null;
    shared.started = false;
  }

  /** One unplug + replug; what each app and source saw, with the wait budget per expectation. */
  async function replug(ctx, { expectReconnect, measure }) {
    const budget = expectReconnect ? ctx.detectTimeoutMs : FAIL_WAIT_MS;
    const old = shared.attach;
    const since = await ctx.now();
    await ctx.qmpUnplug(shared.plugged.id);
    shared.plugged = null;
    const kd = await ctx.kernelDetach(old.port, since);
    const oldId = `${old.bus}-${old.devnum}`;
    const [gone2, gone3] = await Promise.all([
      ctx.waitLine(
        P.v2,
        (d) => (d?.ev === 'disappear' || d?.ev === 'detach') && d.id === oldId,
        since,
        budget,
      ),
      ctx.waitLine(P.v3, (d) => d?.ev === 'disconnect' && d.id === oldId, since, budget),
    ]);
    const rmSeen = measure && kd ? await sourcesSeen(ctx, 'remove', old, since, kd.ts) : null;
    const since2 = await ctx.now();
    shared.plugged = await ctx.qmpPlug(kind);
    const ka = await ctx.kernelAttach(dev.vid, dev.pid, since2);
    if (!ka) throw new Error('replug not seen by the kernel');
    shared.attach = ka;
    const id = `${ka.bus}-${ka.devnum}`;
    const [open2, conn3, open3] = await Promise.all([
      ctx.waitLine(P.v2, (d) => d?.ev === 'open' && d.id === id, since2, budget),
      ctx.waitLine(P.v3, (d) => d?.ev === 'connect' && d.id === id, since2, budget),
      ctx.waitLine(P.v3, (d) => d?.ev === 'open' && d.id === id, since2, budget),
    ]);
    const addSeen = measure ? await sourcesSeen(ctx, 'add', ka, since2, ka.ts) : null;
    return {
      v2: {
        sawUnplug: Boolean(gone2),
        reconnected: Boolean(open2?.data.ok),
        openError: open2?.data.error,
        up: open2?.data.ok ? open2.data.t - ka.ts : null,
      },
      v3: {
        sawUnplug: Boolean(gone3),
        reconnected: Boolean(conn3 && open3?.data.ok),
        openError: open3?.data.error,
        up: conn3 ? conn3.data.t - ka.ts : null,
      },
      add: addSeen,
      remove: rmSeen,
    };
  }

  /** devfs inotify, replug's kernel-uevent source and the relayed udev broadcast in the container, vs the kernel's ts. */
  async function sourcesSeen(ctx, action, at, since, kts) {
    const s = await ctx.sightings(RT, { action, ...at }, since, undefined, 3000);
    const u = await ctx.waitLine(
      P.uevent,
      (d) => d?.type === action && d.bus === at.bus && d.devnum === at.devnum,
      since,
    );
    const rel = (t) => (t == null ? null : t - kts);
    return {
      devfs: rel(s.devfs),
      uevent: rel(u?.data.t),
      udev: rel(s.udev),
      udevadmKernel: rel(s.uevent),
      ueventReported: rel(u?.data.reported),
    };
  }

  function rowsFor(st, label, expectReconnect) {
    const mk = (app, name) => {
      const rows = st.rows.map((r) => r[app]);
      const n = rows.filter((r) => r.reconnected).length;
      const want = expectReconnect ? rows.length : 0;
      const problems = [];
      if (n !== want)
        problems.push(`${name} reconnected ${n}/${rows.length} in the container ${label} (want ${want})`);
      for (const r of rows) if (r.openError) problems.push(`${name} open failed: ${r.openError}`);
      const out = {
        runtime: `${RT} ${label} ${name}`,
        cycles: rows.length,
        reconnects: n,
        expected: want,
        sawUnplug: `${rows.filter((r) => r.sawUnplug).length}/${rows.length}`,
        attachToUpMs: stats(rows.map((r) => r.up)),
        ok: problems.length === 0,
        problems,
      };
      return out;
    };
    const v2 = mk('v2', 'usb@2 (libusb)');
    const v3 = mk('v3', 'usb@3 (nusb)');
    if (expectReconnect) {
      const src = ['devfs', 'uevent', 'udev', 'udevadmKernel', 'ueventReported'];
      v2.latencyMs = Object.fromEntries(src.map((s) => [s, stats(st.rows.map((r) => r.add?.[s]))]));
      v2.removeLatencyMs = Object.fromEntries(src.map((s) => [s, stats(st.rows.map((r) => r.remove?.[s]))]));
      for (const s of ['devfs', 'uevent', 'udev']) {
        const seen = st.rows.filter((r) => r.add?.[s] != null && r.remove?.[s] != null).length;
        if (seen !== st.rows.length)
          v2.problems.push(`${s} saw ${seen}/${st.rows.length} add+remove in the container`);
      }
      v2.ok = v2.problems.length === 0;
    }
    return [v2, v3];
  }

  const withRelay = {
    name: `relay-${tag}-${kind}`,
    runtimes: [RT],
    describe: `replug relay + usb@2 control + usb@3 listener in one container-like namespace vs QMP ${dev.driver} replug: both reconnect N/N`,
    async setup(ctx, st) {
      await startApps(ctx);
      st.rows = [];
    },
    async cycle(ctx, st) {
      st.rows.push(await replug(ctx, { expectReconnect: true, measure: true }));
    },
    async check(_ctx, st) {
      const rows = rowsFor(st, 'with relay', true);
      if (!shared.controlFile?.startsWith('replug-relay')) {
        rows[0].problems.push(
          `/run/udev/control in the container is not the relay's: ${JSON.stringify(shared.controlFile)}`,
        );
        rows[0].ok = false;
      }
      return rows;
    },
    async teardown(ctx, st) {
      if (!st.rows || st.rows.length === 0) await stopAll(ctx); // failed: start clean next time
    },
  };

  const stopped = {
    name: `relay-${tag}-${kind}-stopped`,
    runtimes: [RT],
    describe: 'the same container after `replug relay` is stopped: the control fails again (0/N)',
    async setup(ctx, st) {
      await startApps(ctx);
      const m = await ctx.now();
      await ctx.kill(P.relay);
      st.exit = ctx.log.events.find((e) => e.idx >= m && e.ev === 'exit' && e.name === P.relay) ?? null;
      st.summary = ctx.linesOf(P.relay, m).find((l) => l.line?.includes('stopped ('))?.line ?? null;
      st.controlLeft =
        (await ctx.vm.sh('test -e /run/udev/control', { runtime: RT, check: false })).code === 0;
      st.rows = [];
    },
    async cycle(ctx, st) {
      st.rows.push(await replug(ctx, { expectReconnect: false, measure: false }));
    },
    async check(_ctx, st) {
      const rows = rowsFor(st, 'relay stopped', false);
      const p = rows[0].problems;
      if (st.exit?.code !== 0) p.push(`replug relay exit ${JSON.stringify(st.exit)} on SIGTERM, want 0`);
      if (!st.summary) p.push('replug relay printed no summary line on stop');
      if (st.controlLeft) p.push('/run/udev/control still exists after the relay stopped (it created it)');
      rows[0].relaySummary = st.summary;
      rows[0].ok = p.length === 0;
      return rows;
    },
    async teardown(ctx) {
      await stopAll(ctx);
    },
  };
  return [withRelay, stopped];
}

export function relayRefusesScenario() {
  return {
    name: 'relay-refuses-beside-udevd',
    runtimes: ['native'],
    describe:
      'natively with systemd-udevd running, `replug relay` refuses: REPLUG_RELAY_UDEV_PRESENT, exit 1',
    async setup(ctx, st) {
      await ctx.startUdevd();
      st.rows = [];
    },
    async cycle(ctx, st) {
      // Once is the proof; more cycles only cost a node start each.
      if (st.rows.length) return;
      const r = await ctx.vm.sh([...REPLUG, 'relay'].join(' '), { check: false, timeoutMs: 30000 });
      const left = (await ctx.vm.sh('cat /run/udev/control', { check: false })).stdout;
      st.rows.push({
        code: r.code,
        stderr: r.stderr.trim(),
        controlTouched: left.startsWith('replug-relay'),
      });
    },
    async check(_ctx, st) {
      const r = st.rows[0];
      const problems = [];
      if (!r) problems.push('never ran');
      else {
        if (r.code !== 1) problems.push(`exit ${r.code}, want 1`);
        // The CLI prints a ReplugError as its message (formatForUser never prints codes); this is the
        // REPLUG_RELAY_UDEV_PRESENT line of docs/relay.md.
        if (!r.stderr.includes(UDEV_PRESENT_LINE))
          problems.push(`stderr is not the REPLUG_RELAY_UDEV_PRESENT line: ${r.stderr}`);
        if (r.stderr.split('\n').length !== 1) problems.push(`stderr is not one line: ${r.stderr}`);
        if (r.controlTouched) problems.push('it replaced /run/udev/control');
      }
      return [
        {
          runtime: 'native',
          cycles: 1,
          reconnects: r && problems.length === 0 ? 1 : 0,
          refusal: r?.stderr,
          ok: problems.length === 0,
          problems,
        },
      ];
    },
    async teardown() {},
  };
}

/** Every relay scenario, in the order they run. */
export function relayScenarios() {
  return [
    relayCaptureScenario('kbd'),
    relayCaptureScenario('kbd', { rules: false }),
    ...relayContainerScenarios('kbd'),
    ...relayContainerScenarios('kbd', { sidecar: true }),
    relayRefusesScenario(),
  ];
}
