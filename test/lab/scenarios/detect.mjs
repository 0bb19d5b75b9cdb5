// Detection sources against the kernel's own timestamp, for QMP-hotplugged devices, natively and in the
// container-like namespace at once (the same plug seen from both sides). Proves the premise of the project:
// in the container, devfs inotify and kernel uevents still arrive, udev's broadcasts never do.
import { QMP_DEVICES } from '../lib/context.mjs';
import { stats } from '../lib/events.mjs';

const SOURCES = ['devfs', 'uevent', 'udev'];
/** What each runtime must see: in its own netns, udev broadcasts must NOT arrive (moby/moby#35359). */
const EXPECT = {
  native: { devfs: true, uevent: true, udev: true },
  container: { devfs: true, uevent: true, udev: false },
};

export function detectScenario(kind, runtimes = ['native', 'container']) {
  const dev = QMP_DEVICES[kind];
  return {
    name: `detect-${kind}`,
    runtimes,
    describe: `QMP ${dev.driver} (${dev.vid}:${dev.pid}) plug/unplug; latency per source vs the kernel's timestamp`,

    async setup(ctx, st) {
      await ctx.startUdevd();
      for (const rt of runtimes) await ctx.startWatchers(rt);
      st.rows = Object.fromEntries(runtimes.map((rt) => [rt, []]));
    },

    async cycle(ctx, st) {
      const since = await ctx.now();
      const plugged = await ctx.qmpPlug(kind);
      const ka = await ctx.kernelAttach(dev.vid, dev.pid, since);
      if (!ka) throw new Error(`kernel never announced ${dev.vid}:${dev.pid}`);
      const add = {};
      // Full grace for udev's broadcast in the first runtime; the others got the same broadcast by then or never.
      for (const [i, rt] of runtimes.entries())
        add[rt] = await ctx.sightings(rt, { action: 'add', ...ka }, since, undefined, i ? 500 : 3000);
      const since2 = await ctx.now();
      await ctx.qmpUnplug(plugged.id);
      const kd = await ctx.kernelDetach(ka.port, since2);
      for (const rt of runtimes) {
        const rm = kd
          ? await ctx.sightings(
              rt,
              { action: 'remove', ...ka },
              since2,
              // usb-storage unplugged during its SCSI scan: the kernel removed the node 10.3 s after its "USB
              // disconnect" line in a CI run (the scan's command had to time out first), past the 10 s default.
              Math.max(ctx.detectTimeoutMs, 20_000),
              rt === runtimes[0] ? 3000 : 500,
            )
          : {};
        st.rows[rt].push({
          kernelAttach: ka.ts,
          add: Object.fromEntries(SOURCES.map((s) => [s, add[rt][s] == null ? null : add[rt][s] - ka.ts])),
          remove: Object.fromEntries(SOURCES.map((s) => [s, rm[s] == null || !kd ? null : rm[s] - kd.ts])),
        });
      }
    },

    async check(_ctx, st) {
      const results = [];
      for (const rt of runtimes) {
        const rows = st.rows[rt];
        const seen = (s) => rows.filter((r) => r.add[s] != null && r.remove[s] != null).length;
        const problems = [];
        for (const s of SOURCES) {
          const want = EXPECT[rt][s];
          const n = seen(s);
          if (want && n !== rows.length) problems.push(`${s} saw ${n}/${rows.length} add+remove`);
          if (!want && rows.some((r) => r.add[s] != null || r.remove[s] != null))
            problems.push(`${s} events reached the ${rt} runtime: it is not container-like`);
        }
        results.push({
          runtime: rt,
          cycles: rows.length,
          reconnects: seen('devfs'),
          latencyMs: Object.fromEntries(SOURCES.map((s) => [s, stats(rows.map((r) => r.add[s]))])),
          removeLatencyMs: Object.fromEntries(SOURCES.map((s) => [s, stats(rows.map((r) => r.remove[s]))])),
          seen: Object.fromEntries(SOURCES.map((s) => [s, `${seen(s)}/${rows.length}`])),
          ok: problems.length === 0,
          problems,
        });
      }
      return results;
    },

    async teardown(ctx) {
      for (const rt of runtimes) await ctx.stopWatchers(rt);
    },
  };
}
