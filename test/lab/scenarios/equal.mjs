// Equal terms (issue 17, goal 1): `replug agent` against the libusb control and the raw devfs watcher, on the
// same plugs under the same load, in one run. Running: the broker, one agent natively and one in a runc
// container (each targets its own keyboard, by serial: two agents cannot both claim interface 0), the libusb
// control natively (it never recovers in the container, so the container's agent is held against the native
// control's figure) and the raw devfs watcher (guest/watch-devfs.mjs) in both runtimes. No `replug watch`:
// the agents' own stamps say when they queued for MQTT.
//
// Every cycle plugs the native agent's keyboard, then the container agent's, one at a time, so the control
// (which takes the first 0627:0001 it lists) and both watchers see each plug, and both agents detect it.
// Times are on CLOCK_MONOTONIC in the process that saw the event (the agents' REPLUG_STAMPS=1 lines, the
// control's and the watcher's `t`), against the kernel's "New USB device found" mapped onto it: the pipe to
// the lab adds nothing to them.
//
// Printed: per stage of the agent (src/usb/stamps.ts) p50/max since the attach and since the stage before,
// the slowest stage named, and the goals: agent attach->up p50 <= the control's; the agent's devfs report
// within 10 ms (p50) of the raw watcher's sighting. Goals are figures (PASS/FAIL printed), not checks: the
// run fails on counts (a session not up, the control not reconnecting natively).
// EQUAL_AGENT_ENV='{"REPLUG_SOURCES":"devfs"}' (JSON) adds to the agents' environment, for experiments.
import { stats } from '../lib/events.mjs';
import { log } from '../lib/util.mjs';

const REPLUG = ['node', '/replug/dist/src/bin/replug.js'];
/** EQUAL_CPU_PROF=DIR: each agent runs under node --cpu-prof; the profiles are copied to DIR on the host. */
const PROF_DIR = process.env.EQUAL_CPU_PROF;
const replug = (p) =>
  PROF_DIR ? ['node', '--cpu-prof', `--cpu-prof-dir=/tmp/equal-prof-${p}`, ...REPLUG.slice(1)] : REPLUG;
const CONTAINER = 'container:equal';
const NET = 9;
const PORT = 18839;
const PHASES = ['native', 'container'];
const RT = { native: 'native', container: CONTAINER };
const BROKER_URL = { native: `mqtt://127.0.0.1:${PORT}`, container: `mqtt://10.99.${NET}.1:${PORT}` };
const KBD = { vid: '0627', pid: '0001' };
const UP_TIMEOUT_MS = 30000;
const DOWN_TIMEOUT_MS = 20000;
/** The agent's stages in the order a plug passes them (src/usb/stamps.ts). */
const STAGES = [
  'inotify',
  'listed',
  'identity',
  'source',
  'added',
  'strings',
  'identified',
  'present',
  'open',
  'listing',
  'enumerated',
  'usbfs',
  'detached',
  'claimed',
  'opened',
  'up',
  'mqtt',
];

const agent = (p) => `equal-agent-${p}`;
/** Stamps go to a file, not the log: the agents' log lines cross the serial console, which backs up. */
const stampFile = (p) => `/tmp/replug-equal-stamps-${p}.ndjson`;
const watcher = (p) => `equal-devfs-${p}`;
const serial = (p) => `equal-${p}`;
const target = (p) => `${KBD.vid}:${KBD.pid}:${serial(p)}`;
let plugs = 0;

async function plugKbd(ctx, p) {
  const id = `eqkbd${++plugs}`;
  await ctx.vm.qmp.execute('device_add', { driver: 'usb-kbd', id, bus: 'xhci.0', serial: serial(p) });
  return id;
}

/** The stamp files, parsed: per phase, every stamp so far (read after each plug's unplug). */
async function readStamps(ctx, p) {
  const r = await ctx.vm.sh(`cat ${stampFile(p)} 2>/dev/null || true`, { runtime: RT[p] });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean);
}

/** The first stamp of each stage for device `dev` at or after guest time `since` ('source': devfs's). */
function stampsOf(all, dev, since) {
  const out = {};
  for (const d of all) {
    if (d.dev !== dev || d.t < since || out[d.stage] !== undefined) continue;
    if (d.stage === 'source' && d.source !== 'devfs') continue;
    out[d.stage] = d.t;
  }
  return out;
}

function fmt(s) {
  return s ? `${s.p50}/${s.max}` : '-';
}

/**
 * CPU time (utime + stime, clock ticks of 10 ms) of every process in the guest, by command line: the VM has
 * one vCPU, so what each process spends during the plugs is what the others wait for.
 */
async function cpuByProcess(ctx) {
  const r = await ctx.vm.sh(
    // utime and stime are fields 12 and 13 after the `pid (comm) ` prefix (a thread's comm may hold spaces).
    // The agents' threads are listed too (` ~ <thread name>`): main thread, libuv's pool, V8's workers.
    'for p in /proc/[0-9]*; do c=$(tr "\\0" " " < $p/cmdline 2>/dev/null | cut -c1-60); [ -n "$c" ] || c="[$(cat $p/comm 2>/dev/null)]"; s=$(sed "s/^.*) //" $p/stat 2>/dev/null | cut -d" " -f12,13); [ -n "$s" ] && echo "$s $c"; case "$c" in *replug.js\\ agent*) for t in $p/task/[0-9]*; do ts=$(sed "s/^.*) //" $t/stat 2>/dev/null | cut -d" " -f12,13); [ -n "$ts" ] && echo "$ts $c ~ $(cat $t/comm 2>/dev/null)"; done;; esac; done',
  );
  const out = new Map();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+) (\d+) (.*)$/.exec(line.trim());
    if (m) out.set(m[3], (out.get(m[3]) ?? 0) + (Number(m[1]) + Number(m[2])) * 10);
  }
  return out;
}

export function equalScenario() {
  return {
    name: 'equal',
    runtimes: PHASES,
    describe:
      'replug agent (native + container) vs the libusb control and the raw devfs watcher, same plugs, same load; per-stage stamps',

    async setup(ctx, st) {
      st.rows = Object.fromEntries(PHASES.map((p) => [p, []]));
      st.startMark = await ctx.now();
      await ctx.startUdevd();
      await ctx.vm.sh(`rm -f ${PHASES.map(stampFile).join(' ')}`);
      await ctx.vm.sh('true', { runtime: CONTAINER, net: NET });
      let mark = await ctx.now();
      await ctx.spawn('equal-broker', [
        'node',
        '/lab/guest/broker.mjs',
        '/var/lab/equal-broker.sock',
        `127.0.0.1:${PORT}`,
        `10.99.${NET}.1:${PORT}`,
      ]);
      if (!(await ctx.waitLine('equal-broker', (d) => d?.ready, mark, 60000)))
        throw new Error('broker did not start');
      mark = await ctx.now();
      for (const p of PHASES)
        await ctx.spawn(watcher(p), ['node', '/lab/guest/watch-devfs.mjs'], { runtime: RT[p] });
      await ctx.spawn('equal-control', ['node', '/lab/control/control.mjs'], {
        env: {
          TEST_VID: String(Number.parseInt(KBD.vid, 16)),
          TEST_PID: String(Number.parseInt(KBD.pid, 16)),
        },
      });
      for (const p of PHASES) {
        await ctx.spawn(
          agent(p),
          [
            ...replug(p),
            'agent',
            '--id',
            `equal-${p}`,
            '--runtime-label',
            p,
            '--mqtt',
            BROKER_URL[p],
            '--state-dir',
            `/tmp/replug-state-equal-${p}`,
            '--log-format',
            'json',
            '--settle',
            '5000',
            '--target',
            target(p),
            '--detach-kernel-driver',
          ],
          {
            runtime: RT[p],
            env: { REPLUG_STAMPS: stampFile(p), ...JSON.parse(process.env.EQUAL_AGENT_ENV ?? '{}') },
          },
        );
      }
      const started = (p) =>
        ctx.waitLine(
          agent(p),
          (d) => typeof d?.msg === 'string' && d.msg.startsWith(`agent equal-${p} started`),
          mark,
          180000,
        );
      for (const p of PHASES) if (!(await started(p))) throw new Error(`agent (${p}) did not start`);
      for (const p of PHASES)
        if (!(await ctx.waitLine(watcher(p), (d) => d?.type === 'ready', mark, 60000)))
          throw new Error(`devfs watcher (${p}) did not start`);
      if (!(await ctx.waitLine('equal-control', (d) => d?.ev === 'start', mark, 60000)))
        throw new Error('control did not start');
      // Idle first: what each process spends with nothing plugged (rescans, timers, the harness), so the
      // per-plug figures below are the plugs' own.
      const idle0 = await cpuByProcess(ctx);
      st.idleT0 = Date.now();
      await new Promise((r) => setTimeout(r, 10_000));
      st.cpu0 = await cpuByProcess(ctx);
      st.t0 = Date.now();
      st.idleRate = new Map(
        [...st.cpu0].map(([cmd, ms]) => [cmd, (ms - (idle0.get(cmd) ?? 0)) / (st.t0 - st.idleT0)]),
      );
    },

    async cycle(ctx, st, i) {
      for (const p of PHASES) {
        const mark = await ctx.now();
        const id = await plugKbd(ctx, p);
        st.live = id;
        const ka = await ctx.kernelAttach(KBD.vid, KBD.pid, mark);
        if (!ka) throw new Error(`kernel never announced ${target(p)}`);
        const dev = `${ka.bus}-${ka.devnum}`;
        const node = `/dev/bus/usb/${String(ka.bus).padStart(3, '0')}/${String(ka.devnum).padStart(3, '0')}`;
        const up = await ctx.waitLine(
          agent(p),
          (d) => d?.event === 'session.state' && d.target === target(p) && d.state === 'up',
          mark,
          UP_TIMEOUT_MS,
        );
        const open = await ctx.waitLine(
          'equal-control',
          (d) => d?.ev === 'open' && d.id === dev,
          mark,
          10000,
        );
        const raw = {};
        for (const q of PHASES) {
          const w = await ctx.waitLine(watcher(q), (d) => d?.type === 'add' && d.path === node, mark, 5000);
          raw[q] = w ? w.data.t - ka.ts : null;
        }
        // Stamps are logged as they happen; give the last ones (mqtt) a moment to come through the pipe.
        await ctx.waitLine(
          agent(p),
          (d) => d?.module === 'stamps' && d.stage === 'mqtt' && d.dev === dev,
          mark,
          5000,
        );
        const mark2 = await ctx.now();
        await ctx.qmpUnplug(id);
        st.live = undefined;
        const kd = await ctx.kernelDetach(ka.port, mark2);
        const down = await ctx.waitLine(
          agent(p),
          (d) => d?.event === 'session.state' && d.target === target(p) && d.state === 'waiting',
          mark2,
          DOWN_TIMEOUT_MS,
        );
        await ctx.waitLine('equal-control', (d) => d?.ev === 'disappear' && d.id === dev, mark2, 5000);
        // After the unplug: a stage that came after up (a devfs report still waiting) is counted too.
        // Addresses come back after 127 plugs: only stamps after this plug's kernel attach belong to it.
        const t = stampsOf(await readStamps(ctx, p), dev, ka.ts - 1000);
        const since = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v - ka.ts]));
        st.rows[p].push({
          cycle: i,
          kernel: ka,
          up: Boolean(up),
          down: Boolean(down),
          detachToDownMs: down && kd ? down.t - kd.ts : null,
          stages: since,
          // The agent's own stamp of up; the lab's arrival of the line is later by the pipe and the load.
          attachToUpMs: since.up ?? null,
          control: open?.data.ok ? open.data.t - ka.ts : null,
          controlError: open && !open.data.ok ? open.data.error : undefined,
          raw,
          devfsVsRawMs: since.source != null && raw[p] != null ? since.source - raw[p] : null,
        });
      }
    },

    async check(ctx, st) {
      const all = PHASES.flatMap((p) => st.rows[p]);
      const cpu1 = await cpuByProcess(ctx);
      const elapsed = Date.now() - st.t0;
      const plugs = all.length;
      const spent = [...cpu1]
        .map(([cmd, ms]) => {
          const total = ms - (st.cpu0.get(cmd) ?? 0);
          return [cmd, total, total - (st.idleRate.get(cmd) ?? 0) * elapsed];
        })
        .filter(([, ms]) => ms > 0)
        .sort((a, b) => b[2] - a[2]);
      log(
        `  equal: guest CPU by process over ${plugs} plugs in ${Math.round(elapsed / 1000)} s (one vCPU, 10 ms ticks): ms per plug, and per plug beyond the process's idle rate`,
      );
      const row = ([cmd, total, beyond]) =>
        log(
          `    ${(total / plugs).toFixed(0).padStart(6)} ${(beyond / plugs).toFixed(0).padStart(6)}  ${cmd}`,
        );
      for (const r of spent.filter(([cmd]) => !cmd.includes(' ~ ')).slice(0, 10)) row(r);
      log('  equal: the agents by thread (ms per plug, and beyond idle)');
      for (const r of spent.filter(([cmd]) => cmd.includes(' ~ '))) row(r);
      const control = stats(all.map((r) => r.control));
      const controlOk = all.filter((r) => r.control != null).length;
      const results = PHASES.map((p) => {
        const rows = st.rows[p];
        const problems = [];
        const reconnects = rows.filter((r) => r.up && r.down).length;
        if (reconnects !== rows.length)
          problems.push(`agent (${p}) reconnected ${reconnects}/${rows.length}`);
        const up = stats(rows.map((r) => r.attachToUpMs));
        const devfs = stats(rows.map((r) => r.stages.source));
        const raw = stats(rows.map((r) => r.raw[p]));
        const vsRaw = stats(rows.map((r) => r.devfsVsRawMs));
        log(
          `  equal [${p}]: where the time goes (ms since the kernel's attach | since the stage before, p50/max)`,
        );
        let slow = { stage: null, p50: -1 };
        let prev = null;
        for (const s of STAGES) {
          const abs = stats(rows.map((r) => r.stages[s]));
          const delta = stats(
            rows.map((r) => {
              if (r.stages[s] == null) return null;
              // The stage before that this plug passed (identified/strings are absent when not needed).
              const before = STAGES.slice(0, STAGES.indexOf(s))
                .reverse()
                .find((b) => r.stages[b] != null);
              return before ? r.stages[s] - r.stages[before] : r.stages[s];
            }),
          );
          if (delta && delta.p50 > slow.p50) slow = { stage: `${prev ?? 'attach'} -> ${s}`, p50: delta.p50 };
          if (abs) prev = s;
          log(`    ${s.padEnd(10)} ${fmt(abs).padStart(16)} | ${fmt(delta).padStart(16)}`);
        }
        log(`    raw devfs watcher ${fmt(raw)}, libusb control open ${fmt(control)} (native)`);
        log(`    slowest stage: ${slow.stage} (p50 ${slow.p50} ms)`);
        const g1 = up && control ? up.p50 <= control.p50 : false;
        const g2 = vsRaw ? vsRaw.p50 <= 10 : false;
        log(
          `    goal attach->up p50 <= control's: ${fmt(up)} vs ${fmt(control)} ${g1 ? 'PASS' : 'FAIL'}; ` +
            `goal devfs report within 10 ms of the raw watcher (p50): ${fmt(vsRaw)} ${g2 ? 'PASS' : 'FAIL'} (n=${rows.length})`,
        );
        for (const r of rows.filter((x) => !x.up))
          problems.push(`${target(p)} at ${r.kernel.port} (address ${r.kernel.devnum}): no session up`);
        return {
          runtime: `${p} agent`,
          cycles: rows.length,
          reconnects,
          latencyMs: { devfs },
          attachToUpMs: up,
          stages: Object.fromEntries(STAGES.map((s) => [s, stats(rows.map((r) => r.stages[s]))])),
          slowest: slow,
          devfsVsRawMs: vsRaw,
          goals: { upVsControl: g1 ? 'PASS' : 'FAIL', devfsVsRaw: g2 ? 'PASS' : 'FAIL' },
          perCycle: rows,
          ok: problems.length === 0,
          problems,
        };
      });
      const controlProblems =
        controlOk === all.length
          ? []
          : [`libusb control reconnected only ${controlOk}/${all.length} natively`];
      results.push({
        runtime: 'native libusb control',
        cycles: all.length,
        reconnects: controlOk,
        attachToUpMs: control,
        ok: controlProblems.length === 0,
        problems: controlProblems,
      });
      for (const p of PHASES)
        results.push({
          runtime: `${p} raw devfs watcher`,
          cycles: all.length,
          reconnects: all.filter((r) => r.raw[p] != null).length,
          latencyMs: { devfs: stats(all.map((r) => r.raw[p])) },
          ok: true,
          problems: [],
        });
      return results;
    },

    async teardown(ctx, st) {
      for (const p of PHASES) await ctx.kill(agent(p));
      if (PROF_DIR) {
        const { mkdirSync, writeFileSync } = await import('node:fs');
        mkdirSync(PROF_DIR, { recursive: true });
        for (const p of PHASES) {
          const r = await ctx.vm.sh(`cat /tmp/equal-prof-${p}/*.cpuprofile | gzip -c | base64 -w0`, {
            runtime: RT[p],
          });
          writeFileSync(`${PROF_DIR}/equal-${p}.cpuprofile.gz`, Buffer.from(r.stdout.trim(), 'base64'));
        }
      }
      await ctx.kill('equal-control');
      for (const p of PHASES) await ctx.kill(watcher(p));
      await ctx.kill('equal-broker');
      if (st.live) await ctx.qmpUnplug(st.live).catch(() => {});
    },
  };
}
