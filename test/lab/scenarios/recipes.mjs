// Every `docker run` recipe of issue 16 as a runc container made from Docker's own spec (test/lab/oci/), side
// by side on the same replugs. Inside each: `replug doctor --json` says per detection source whether it
// works; the lab measures it (devfs inotify, kernel uevents, udev broadcasts = what usb v3 and libusb hear,
// the libusb control reconnecting, and whether the replugged node can be opened). A prediction the
// measurement contradicts fails the run; the table of both is printed.
import { QMP_DEVICES } from '../lib/context.mjs';

const DEV = QMP_DEVICES.kbd;
/** recipe -> runtime; the device-node recipe gets the node of the device present when it starts. */
export const RECIPE_RUNTIMES = {
  privileged: 'container:r-priv@privileged',
  'cgroup-rule': 'container:r-rule@cgroup-rule',
  'device-node': 'container:r-node@device-node',
  'hostnet-udev': 'container:r-host@hostnet-udev',
  // The recommended recipe under a user namespace (dockerd --userns-remap): kernel uevents stop arriving.
  userns: 'container:r-userns@userns',
};
const FAIL_WAIT_MS = 4000;
const CONTROL = ['node', '/lab/control/control.mjs'];
// A fresh process opening the node read-write, as a session does (busybox sh: no node start-up under TCG).
const OPEN = (node) =>
  `if [ ! -e ${node} ]; then echo missing; elif (exec 3<>${node}); then echo open; else echo denied; fi 2>/dev/null`;
// The README's rule for a non-root container (deploy/udev/99-replug.rules) for the lab's keyboard, with the
// numeric gid: udevd runs with --resolve-names=never.
const UDEV_RULE = `SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="${DEV.vid}", ATTR{idProduct}=="${DEV.pid}", GROUP="46", MODE="0660"`;

/** doctor's verdict.sources, by the lab's measurement names. */
const PREDICTS = { devfs: 'devfs', uevent: 'uevent', udev: 'nusb', libusb: 'libusb' };

const libusbSays = (doctor) => doctor?.verdict?.sources?.find((s) => s.source === 'libusb')?.works;

const nodeOf = ({ bus, devnum }) =>
  `/dev/bus/usb/${String(bus).padStart(3, '0')}/${String(devnum).padStart(3, '0')}`;

export function recipesScenario(recipes = Object.keys(RECIPE_RUNTIMES)) {
  const runtimes = recipes.map((r) => RECIPE_RUNTIMES[r]);
  const env = {
    TEST_VID: String(Number.parseInt(DEV.vid, 16)),
    TEST_PID: String(Number.parseInt(DEV.pid, 16)),
  };
  return {
    name: 'recipes-kbd',
    runtimes,
    describe: `docker run recipes (${recipes.join(', ')}) as runc containers from Docker's specs: doctor's prediction vs measurement`,

    async setup(ctx, st) {
      await ctx.vm.sh(
        `mkdir -p /etc/udev/rules.d && echo '${UDEV_RULE}' > /etc/udev/rules.d/99-replug-lab.rules`,
      );
      await ctx.startUdevd();
      const since = await ctx.now();
      st.plugged = await ctx.qmpPlug('kbd');
      st.attach = await ctx.kernelAttach(DEV.vid, DEV.pid, since);
      if (!st.attach) throw new Error('initial plug not seen by the kernel');
      await ctx.vm.sh(
        `for i in $(seq 50); do [ -e ${nodeOf(st.attach)} ] && exit 0; sleep 0.1; done; exit 1`,
      );
      st.doctor = {};
      // One container after the other: node processes starting all at once starve the one TCG vCPU past the
      // watchers' start timeout.
      for (const rt of runtimes) {
        // The first use starts the container; --device takes the node that is there now.
        const r = await ctx.vm.sh('node /replug/dist/src/bin/replug.js doctor --json', {
          runtime: rt,
          check: false,
          device: st.attach,
          timeoutMs: 120000,
        });
        try {
          st.doctor[rt] = JSON.parse(r.stdout);
        } catch {
          throw new Error(`doctor in ${rt}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
        }
        await ctx.startWatchers(rt);
        await ctx.spawn(`rcontrol-${rt}`, CONTROL, { runtime: rt, env });
      }
      st.rows = Object.fromEntries(runtimes.map((rt) => [rt, []]));
    },

    async cycle(ctx, st) {
      const since = await ctx.now();
      await ctx.qmpUnplug(st.plugged.id);
      await ctx.kernelDetach(st.attach.port, since);
      const since2 = await ctx.now();
      st.plugged = await ctx.qmpPlug('kbd');
      const ka = await ctx.kernelAttach(DEV.vid, DEV.pid, since2);
      if (!ka) throw new Error('replug not seen by the kernel');
      st.attach = ka;
      const id = `${ka.bus}-${ka.devnum}`;
      // The same replug seen from every container at once: wait for all of them in parallel.
      await Promise.all(
        runtimes.map(async (rt, i) => {
          const [seen, open] = await Promise.all([
            ctx.sightings(rt, { action: 'add', ...ka }, since2, undefined, i ? 1500 : 3000),
            ctx.waitLine(
              `rcontrol-${rt}`,
              (d) => d?.ev === 'open' && d.id === id,
              since2,
              // Short only where doctor says it never comes; elsewhere a starved vCPU must not read as "no".
              libusbSays(st.doctor[rt]) === 'no' ? FAIL_WAIT_MS : ctx.detectTimeoutMs,
            ),
          ]);
          const node = (await ctx.vm.sh(OPEN(nodeOf(ka)), { runtime: rt, check: false })).stdout.trim();
          st.rows[rt].push({
            devfs: seen.devfs != null,
            uevent: seen.uevent != null,
            udev: seen.udev != null,
            libusb: Boolean(open?.data.ok),
            open: node,
          });
        }),
      );
    },

    async check(_ctx, st) {
      return runtimes.map((rt, i) => judge(recipes[i], rt, st.doctor[rt], st.rows[rt]));
    },

    async teardown(ctx) {
      for (const rt of runtimes) {
        await ctx.kill(`rcontrol-${rt}`).catch(() => {});
        await ctx.stopWatchers(rt).catch(() => {});
        await ctx.stopContainer(rt).catch(() => {});
      }
      await ctx.vm.sh('rm -f /etc/udev/rules.d/99-replug-lab.rules', { check: false });
    },
  };
}

/**
 * One row per recipe. doctor 'yes' must be N/N, 'no' must be 0/N; 'partial'/'unknown' contradict nothing
 * but are shown. Node opening has no source of its own in the verdict: doctor's `dev` facts say whether the
 * bus is bind-mounted (`busUsb`), and the measurement must agree (a snapshot node cannot be reopened).
 */
export function judge(recipe, runtime, doctor, rows) {
  const n = rows.length;
  const problems = [];
  const predictions = [];
  for (const [measure, source] of Object.entries(PREDICTS)) {
    const v = doctor?.verdict?.sources?.find((s) => s.source === source);
    const got = rows.filter((r) => r[measure]).length;
    const says = v?.works ?? 'absent';
    const agrees = says === 'yes' ? got === n : says === 'no' ? got === 0 : true;
    if (!agrees) problems.push(`doctor says ${source} ${says} (${v?.why}), measured ${got}/${n}`);
    predictions.push({
      source,
      says,
      why: v?.why,
      fix: (v?.fix ?? []).join('; '),
      measured: `${got}/${n}`,
      agrees,
    });
  }
  const opened = rows.filter((r) => r.open === 'open').length;
  // BusUsbKind (src/doctor/types.ts): live and bind follow the devices, nodes is a snapshot.
  const bus = doctor?.info?.busUsb;
  const follows = bus === 'live' || bus === 'bind';
  // In a user namespace the nodes' owner and group (the host's root, plugdev) are outside the mapping: only
  // the mode's "other" bits apply, whatever udev rule gives the group. doctor's own open of a node failing
  // with EACCES there says those bits refuse it.
  const remapped = doctor?.info?.userns === 'own' && doctor?.facts?.cgroup?.openResult?.outcome === 'EACCES';
  const saysOpen = follows ? (remapped ? 'no' : 'yes') : bus === 'nodes' ? 'no' : 'unknown';
  const openAgrees = saysOpen === 'yes' ? opened === n : saysOpen === 'no' ? opened === 0 : true;
  if (!openAgrees)
    problems.push(
      `doctor says /dev/bus/usb ${bus}, replugged node opened ${opened}/${n} (${rows.map((r) => r.open).join(',')})`,
    );
  predictions.push({
    source: 'open',
    says: `${saysOpen} (busUsb=${bus}${remapped ? ', userns, EACCES' : ''})`,
    measured: `${opened}/${n}`,
    agrees: openAgrees,
  });
  if (!doctor) problems.push('doctor gave no JSON');
  return {
    runtime: `${recipe} (${runtime.split('@')[0]})`,
    cycles: n,
    reconnects: rows.filter((r) => r.devfs).length,
    doctor: doctor?.summary,
    predictions,
    ok: problems.length === 0,
    problems,
  };
}
