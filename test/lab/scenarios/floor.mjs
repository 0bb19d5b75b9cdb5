// The floor under the agent's reconnect (issue 17, goal 1): guest/usb3-floor.mjs takes the default driver's
// steps through usb@3 (list, open, detach, claim, GET_DESCRIPTOR) on each plug of a USB keyboard, alone in
// the VM with udevd running. `equal` measures the agent under the load of the whole comparison (two agents,
// the control, watchers, the broker on one vCPU); this is what the same steps cost with nothing else
// running, so the two together say how much of the agent's time is its own work and how much is the load.
// Printed: each step's p50/max since the kernel's attach. Fails on counts only.
import { stats } from '../lib/events.mjs';
import { log } from '../lib/util.mjs';

const KBD = { vid: '0627', pid: '0001' };
const STEPS = ['node', 'serial', 'listed', 'usbfs', 'detached', 'claimed', 'verified'];

export function floorScenario() {
  return {
    name: 'floor',
    runtimes: ['native'],
    describe: "usb@3's own open path (list, open, detach, claim, GET_DESCRIPTOR) alone, udevd running",

    async setup(ctx, st) {
      st.rows = [];
      await ctx.startUdevd();
      const mark = await ctx.now();
      await ctx.spawn('floor', ['node', '/lab/guest/usb3-floor.mjs']);
      if (!(await ctx.waitLine('floor', (d) => d?.ev === 'ready', mark, 60000)))
        throw new Error('guest/usb3-floor.mjs did not start');
    },

    async cycle(ctx, st, i) {
      const mark = await ctx.now();
      const id = `floorkbd${i}`;
      await ctx.vm.qmp.execute('device_add', { driver: 'usb-kbd', id, bus: 'xhci.0', serial: `floor-${i}` });
      st.live = id;
      const ka = await ctx.kernelAttach(KBD.vid, KBD.pid, mark);
      if (!ka) throw new Error('kernel never announced the keyboard');
      const line = await ctx.waitLine(
        'floor',
        (d) => d?.ev === 'floor' && d.address === ka.devnum,
        mark,
        20000,
      );
      const row = { ok: line?.data.ok === true, error: line?.data.error, steps: {} };
      for (const s of STEPS) {
        const t = line?.data.at?.[s];
        row.steps[s] = t === undefined ? null : t - ka.ts;
      }
      st.rows.push(row);
      const mark2 = await ctx.now();
      await ctx.qmpUnplug(id);
      st.live = undefined;
      await ctx.kernelDetach(ka.port, mark2);
    },

    async check(_ctx, st) {
      const rows = st.rows;
      log("  floor: the default driver's steps through usb@3 alone (ms since the kernel's attach, p50/max)");
      for (const s of STEPS) {
        const v = stats(rows.map((r) => r.steps[s]));
        log(`    ${s.padEnd(9)} ${v ? `${v.p50}/${v.max}` : '-'}`);
      }
      const ok = rows.filter((r) => r.ok).length;
      const problems = rows.filter((r) => !r.ok).map((r) => r.error ?? 'no line');
      return [
        {
          runtime: 'native usb@3 alone',
          cycles: rows.length,
          reconnects: ok,
          attachToUpMs: stats(rows.map((r) => (r.ok ? r.steps.verified : null))),
          ok: ok === rows.length,
          problems,
        },
      ];
    },

    async teardown(ctx, st) {
      await ctx.kill('floor');
      if (st.live) await ctx.qmpUnplug(st.live).catch(() => {});
    },
  };
}
