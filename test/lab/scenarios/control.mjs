// The control: the libusb (usb v2) reconnect loop, natively and in the container-like namespace, through
// the same unplug/replug cycles. It must reconnect N/N natively and 0/N in the container; anything else means
// the lab does not reproduce the failure replug exists for, and the run fails.
import { QMP_DEVICES } from '../lib/context.mjs';
import { stats } from '../lib/events.mjs';

const CONTROL = ['node', '/lab/control/control.mjs'];
/** Natively libusb opens the replugged device ~0.3 s after the kernel's attach here; 4 s is plenty. */
const FAIL_WAIT_MS = 4000;

/**
 * @param expect per runtime: 'reconnect' (N/N) or 'fail' (0/N). Without udevd libusb's udev backend hears
 * nothing even natively (no broadcasts, and libudev turns its monitor off without /run/udev/control).
 */
export function controlScenario(
  kind = 'kbd',
  {
    runtimes = ['native', 'container'],
    udevd = true,
    expect = { native: 'reconnect', container: 'fail' },
  } = {},
) {
  const dev = QMP_DEVICES[kind];
  const proc = (rt) => `control-${rt}`;
  return {
    name: `control-libusb-${kind}${udevd ? '' : '-no-udevd'}`,
    runtimes,
    describe: `usb@2 (libusb) reconnect loop vs QMP ${dev.driver} replug, udevd ${udevd ? 'running' : 'stopped'}; expect ${JSON.stringify(expect)}`,

    async setup(ctx, st) {
      if (udevd) await ctx.startUdevd();
      else await ctx.stopUdevd();
      const since = await ctx.now();
      st.plugged = await ctx.qmpPlug(kind);
      st.attach = await ctx.kernelAttach(dev.vid, dev.pid, since);
      if (!st.attach) throw new Error('initial plug not seen by the kernel');
      // The seed's situation: the app starts with the device present, then it is replugged.
      const env = {
        TEST_VID: String(Number.parseInt(dev.vid, 16)),
        TEST_PID: String(Number.parseInt(dev.pid, 16)),
      };
      for (const rt of runtimes) await ctx.spawn(proc(rt), CONTROL, { runtime: rt, env });
      for (const rt of runtimes) {
        const open = await ctx.waitLine(proc(rt), (d) => d?.ev === 'open', 0, 60000);
        if (!open?.data.ok)
          throw new Error(`control (${rt}) could not open the initial device: ${JSON.stringify(open?.data)}`);
      }
      st.rows = Object.fromEntries(runtimes.map((rt) => [rt, []]));
    },

    async cycle(ctx, st) {
      const since = await ctx.now();
      await ctx.qmpUnplug(st.plugged.id);
      const kd = await ctx.kernelDetach(st.attach.port, since);
      // Runtimes expected to reconnect get the full timeout; those expected to fail get FAIL_WAIT_MS after
      // them (the waits run one after the other, but the processes saw the same replug in parallel), so a
      // cycle does not sit out the full timeout for an event that should never come.
      const order = [...runtimes].sort((a, b) => (expect[a] === 'fail') - (expect[b] === 'fail'));
      const budget = (rt) => (expect[rt] === 'fail' ? FAIL_WAIT_MS : ctx.detectTimeoutMs);
      const seenGone = {};
      for (const rt of order) {
        seenGone[rt] = await ctx.waitLine(
          proc(rt),
          (d) => d?.ev === 'disappear' || d?.ev === 'detach',
          since,
          budget(rt),
        );
      }
      const since2 = await ctx.now();
      st.plugged = await ctx.qmpPlug(kind);
      const ka = await ctx.kernelAttach(dev.vid, dev.pid, since2);
      if (!ka) throw new Error('replug not seen by the kernel');
      st.attach = ka;
      const id = `${ka.bus}-${ka.devnum}`;
      for (const rt of order) {
        const open = await ctx.waitLine(proc(rt), (d) => d?.ev === 'open' && d.id === id, since2, budget(rt));
        st.rows[rt].push({
          kernelDetach: kd?.ts ?? null,
          sawUnplug: Boolean(seenGone[rt]),
          reconnected: Boolean(open?.data.ok),
          openError: open && !open.data.ok ? open.data.error : undefined,
          attachToOpenMs: open?.data.ok ? open.data.t - ka.ts : null,
        });
      }
    },

    async check(_ctx, st) {
      return st.rows.native || st.rows.container
        ? Object.entries(st.rows).map(([rt, rows]) => {
            const n = rows.filter((r) => r.reconnected).length;
            const problems = [];
            const want = expect[rt] === 'fail' ? 0 : rows.length;
            if (n !== want && want === 0)
              problems.push(
                `libusb reconnected ${n}/${rows.length} in ${rt}: the lab is not testing what it claims`,
              );
            else if (n !== want) problems.push(`libusb reconnected only ${n}/${rows.length} in ${rt}`);
            return {
              runtime: rt,
              cycles: rows.length,
              reconnects: n,
              expected: expect[rt] === 'fail' ? 0 : rows.length,
              sawUnplug: `${rows.filter((r) => r.sawUnplug).length}/${rows.length}`,
              attachToUpMs: stats(rows.map((r) => r.attachToOpenMs)),
              ok: problems.length === 0,
              problems,
            };
          })
        : [];
    },

    async teardown(ctx, st) {
      for (const rt of runtimes) await ctx.kill(proc(rt));
      if (st.plugged) await ctx.qmpUnplug(st.plugged.id).catch(() => {});
      if (!udevd) await ctx.startUdevd();
    },
  };
}
