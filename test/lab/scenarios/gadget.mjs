// The dummy_hcd + configfs Loopback gadget: plug/unplug by UDC bind/unbind with scenario-set VID/PID/serial,
// seen natively and from the container-like namespace, plus a 4096-byte bulk OUT/IN echo natively each cycle
// (real I/O, so session drivers have something to talk to).
import { stats } from '../lib/events.mjs';

export function gadgetScenario({
  vid = '1209',
  pid = '0001',
  serial = 'replug-lab-1',
  runtimes = ['native', 'container'],
} = {}) {
  return {
    name: 'gadget-loopback',
    runtimes,
    describe: `dummy_hcd Loopback gadget ${vid}:${pid} serial ${serial}: UDC bind/unbind, bulk echo`,

    async setup(ctx, st) {
      await ctx.startUdevd();
      for (const rt of runtimes) await ctx.startWatchers(rt);
      await ctx.gadgetSetup(`0x${vid}`, `0x${pid}`, serial);
      st.rows = Object.fromEntries(runtimes.map((rt) => [rt, []]));
    },

    async cycle(ctx, st) {
      const since = await ctx.now();
      await ctx.gadgetPlug();
      const ka = await ctx.kernelAttach(vid, pid, since);
      if (!ka) throw new Error(`kernel never announced the gadget ${vid}:${pid}`);
      const add = {};
      // Full grace for udev's broadcast in the first runtime; the others got the same broadcast by then or never.
      for (const [i, rt] of runtimes.entries())
        add[rt] = await ctx.sightings(rt, { action: 'add', ...ka }, since, undefined, i ? 500 : 3000);
      const sysSerial = (
        await ctx.vm.sh(`cat /sys/bus/usb/devices/${ka.port}/serial`, { check: false })
      ).stdout.trim();
      const echo = await ctx.vm.sh('node /lab/control/bulk-echo.mjs', {
        check: false,
        timeoutMs: 30000,
        env: { TEST_VID: String(Number.parseInt(vid, 16)), TEST_PID: String(Number.parseInt(pid, 16)) },
      });
      let io = null;
      try {
        io = JSON.parse(echo.stdout.trim().split('\n').pop());
      } catch {
        io = { ok: false, error: echo.stderr.trim().split('\n').pop() };
      }
      const since2 = await ctx.now();
      await ctx.gadgetUnplug();
      const kd = await ctx.kernelDetach(ka.port, since2);
      for (const rt of runtimes) {
        const rm = kd
          ? await ctx.sightings(
              rt,
              { action: 'remove', ...ka },
              since2,
              undefined,
              rt === runtimes[0] ? 3000 : 500,
            )
          : {};
        st.rows[rt].push({
          serialOk: sysSerial === serial,
          devfsAdd: add[rt].devfs == null ? null : add[rt].devfs - ka.ts,
          devfsRemove: rm.devfs == null ? null : rm.devfs - kd.ts,
          bulk: rt === 'native' ? io : undefined,
        });
      }
    },

    async check(_ctx, st) {
      return Object.entries(st.rows).map(([rt, rows]) => {
        const seen = rows.filter((r) => r.devfsAdd != null && r.devfsRemove != null).length;
        const problems = [];
        if (seen !== rows.length) problems.push(`devfs saw ${seen}/${rows.length} plug+unplug`);
        if (rows.some((r) => !r.serialOk))
          problems.push('sysfs serial differs from the one the scenario set');
        const bulkOk = rows.filter((r) => r.bulk?.ok).length;
        if (rt === 'native' && bulkOk !== rows.length)
          problems.push(
            `bulk echo ok ${bulkOk}/${rows.length}: ${rows.find((r) => !r.bulk?.ok)?.bulk?.error}`,
          );
        return {
          runtime: rt,
          cycles: rows.length,
          reconnects: seen,
          latencyMs: { devfs: stats(rows.map((r) => r.devfsAdd)) },
          bulkEchoMs: rt === 'native' ? stats(rows.map((r) => r.bulk?.ms)) : undefined,
          ok: problems.length === 0,
          problems,
        };
      });
    },

    async teardown(ctx) {
      await ctx.gadgetUnplug().catch(() => {});
      for (const rt of runtimes) await ctx.stopWatchers(rt);
    },
  };
}
