// The recovery ladder on the real kernel (issue 15) and the `reset` request over MQTT (issue 18), on a device
// that stops answering until it is reset: guest/ffs-wedge.mjs behind a FunctionFS gadget (guest/ffs-gadget.sh)
// echoes N bulk transfers and then NAKs every transfer until a bus reset or a reconfiguration.
//
// Four agents (`replug agent`, examples/drivers/bulk-loopback.mjs: a 4096-byte loopback at open and as the
// liveness probe every second), each with its own target serial, all publishing to one broker in the VM:
//   native, container  --heal reset,reauthorize,port-power,rebind: after N transfers the probe fails
//                      (wedged), the ladder reopens (fails: the device still NAKs), then resets; the cycle
//                      passes when a heal.step says `up`, the session is up again and the kernel logged the
//                      reset or re-enumeration of that port;
//   native heal off    the control: the same wedge, no ladder; the session must stay down for CONTROL_WAIT_MS
//                      (0/N expected; the run fails if it comes back);
//   native, MQTT reset --heal on but its thresholds out of reach, the device wedged from the plug (answers 0),
//                      so no session ever comes up and the ladder never climbs by itself; `replug request
//                      <agent> reset --target KEY` through the broker must bring it back; with `--step S`
//                      one named step (reauthorize, port-power, rebind), a different one each cycle;
//   container, MQTT    the same agent in `container:heal`, for the named steps only, one per cycle while
//                      each has not had its turn (cycles 0-2: a cheaper proof than a phase every cycle);
//                      `replug doctor --json` inside says first which steps can work there, and the row
//                      shows the prediction next to the measurement.
// One UDC, so the gadget serves one phase at a time: each phase re-plugs it with that phase's serial.
import { stats } from '../lib/events.mjs';
import { log } from '../lib/util.mjs';

const REPLUG = ['node', '/replug/dist/src/bin/replug.js'];
const CONTAINER = 'container:heal';
const NET = 11; // one per scenario: equal.mjs has 9 and its veth outlives the scenario
const PORT = 18839;
const SOCK = '/var/lab/heal-broker.sock';
const BROKER_URL = { native: `mqtt://127.0.0.1:${PORT}`, container: `mqtt://10.99.${NET}.1:${PORT}` };
const GADGET = { vid: '1209', pid: '0006' };
/** Bulk transfers the gadget answers after each enable (the driver's open does one, then one per second). */
const ANSWERS = 4;
const ANSWERS_FILE = '/var/lab/ffs-wedge.answers';
const STEPS = 'reset,reauthorize,port-power,rebind';
const STEP_WAIT_MS = 5000;
const CONTROL_WAIT_MS = 20000;
const UP_TIMEOUT_MS = 60000;
/** The whole ladder may take (reopen + four device steps) x step wait, with slack for TCG. */
const HEAL_TIMEOUT_MS = 120000;
const DRIVER = ['--driver', '/replug/examples/drivers/bulk-loopback.mjs'];
const LADDER = [
  '--heal',
  STEPS,
  // Every cycle is a fresh climb from the reopen: no escalation from the last success, no rate limit.
  '--heal-window',
  '1000',
  '--heal-max-runs',
  '1000',
];
const AUTO = [...LADDER, '--heal-step-wait', String(STEP_WAIT_MS), '--heal-after-attempts', '3'];

/** The ladder is there for requests; its own thresholds are out of reach. */
const REQUESTS_ONLY = [
  '--commands',
  ...LADDER,
  '--heal-step-wait',
  '10000',
  '--heal-after-attempts',
  '10000',
  '--heal-after',
  '86400000',
];

/** The agents: each its own target serial, so only its phases' plugs are its device. */
const AGENTS = Object.fromEntries(
  [
    { name: 'native', spawn: 'native', mqtt: BROKER_URL.native, args: AUTO },
    { name: 'container', spawn: CONTAINER, mqtt: BROKER_URL.container, args: AUTO },
    { name: 'control', spawn: 'native', mqtt: BROKER_URL.native, args: [] },
    { name: 'mqtt', spawn: 'native', mqtt: BROKER_URL.native, args: REQUESTS_ONLY },
    { name: 'container-mqtt', spawn: CONTAINER, mqtt: BROKER_URL.container, args: REQUESTS_ONLY },
  ].map((a) => {
    const serial = `lab-ffs-${a.name}`;
    const key = `${GADGET.vid}:${GADGET.pid}:${serial}`;
    return [a.name, { ...a, serial, key, proc: `heal-${a.name}`, id: `lab-heal-${a.name}` }];
  }),
);

/**
 * heal: wedges after ANSWERS transfers, the probe notices, the ladder climbs (trigger `wedged`);
 * plug: wedged from the plug, every open fails, the ladder climbs after 3 (trigger `attempts`);
 * control: the heal kind without a ladder; mqtt: wedged from the plug, healed by a request only.
 */
const ONE_STEPS = ['reauthorize', 'port-power', 'rebind'];
const oneStep = (i) => ONE_STEPS[i % ONE_STEPS.length];
/** Each named step's own proof on the real kernel (rebind logs nothing: the function's DISABLE/ENABLE does). */
const STEP_PROOF = {
  reauthorize: (r) => r.kernel.some((l) => / authorized to connect$/.test(l)),
  'port-power': (r) =>
    r.kernel.some((l) => / USB disconnect/.test(l)) && r.kernel.some((l) => / new .*device number/.test(l)),
  rebind: (r) => r.unwedged,
};
const PHASES = [
  { label: 'native', agent: 'native', kind: 'heal' },
  { label: 'native wedged at plug', agent: 'native', kind: 'plug' },
  { label: 'container', agent: 'container', kind: 'heal' },
  { label: 'container wedged at plug', agent: 'container', kind: 'plug' },
  { label: 'native heal off', agent: 'control', kind: 'control' },
  { label: 'native reset over MQTT', agent: 'mqtt', kind: 'mqtt' },
  // One named step per request, a different one each cycle: each step's own effect on the real kernel.
  { label: 'native one step over MQTT', agent: 'mqtt', kind: 'mqtt', step: oneStep, doctor: 'native' },
  // The same in the container, each named step once (cycles 0-2), not a phase in every cycle.
  {
    label: 'container one step over MQTT',
    agent: 'container-mqtt',
    kind: 'mqtt',
    step: oneStep,
    doctor: CONTAINER,
    only: (i) => i < ONE_STEPS.length,
  },
].map((p) => ({ ...AGENTS[p.agent], ...p, name: p.label.replaceAll(' ', '-') }));

const ffs = (args) => `/lab/guest/ffs-gadget.sh ${args}`;

/** The kernel's attach of the gadget with this serial after `since`: { port, bus, devnum } or null. */
async function attachOf(ctx, serial, since) {
  const line = await ctx.log.wait(
    (m) =>
      m.ev === 'kmsg' &&
      m.idx >= since &&
      /^usb \S+: SerialNumber: /.test(m.msg) &&
      m.msg.endsWith(`: ${serial}`),
    ctx.detectTimeoutMs,
  );
  if (!line) return null;
  const port = line.msg.match(/^usb (\S+):/)[1];
  const numbered = ctx.log.events
    .slice(since, line.idx)
    .reverse()
    .find((m) => m.ev === 'kmsg' && m.msg.startsWith(`usb ${port}: new `));
  return {
    port,
    bus: Number(port.split('-')[0]),
    devnum: Number(numbered?.msg.match(/device number (\d+)/)?.[1]),
  };
}

/** Kernel lines after `since` that show port `port` reset or re-enumerated (the step's own proof). */
function kernelHeals(ctx, port, since) {
  return ctx.log.events
    .filter(
      (m) =>
        m.ev === 'kmsg' &&
        m.idx >= since &&
        (m.msg.startsWith(`usb ${port}: reset `) ||
          m.msg.startsWith(`usb ${port}: new `) ||
          m.msg.startsWith(`usb ${port}: USB disconnect`) ||
          m.msg.startsWith(`usb ${port}: authorized`)),
    )
    .map((m) => m.msg);
}

const sessionUp = (p) => (d) => d?.event === 'session.state' && d.target === p.key && d.state === 'up';

async function plugPhase(ctx, st, p, answers) {
  if (st.plugged) await ctx.vm.sh(ffs('unplug'));
  st.plugged = false;
  await ctx.vm.sh(
    `${ffs(`setup 0x${GADGET.vid} 0x${GADGET.pid} ${p.serial}`)} && echo ${answers} > ${ANSWERS_FILE}`,
  );
  const mark = await ctx.now();
  await ctx.vm.sh(ffs('plug'));
  st.plugged = true;
  const ka = await attachOf(ctx, p.serial, mark);
  if (!ka) throw new Error(`kernel never announced the FunctionFS gadget ${p.key}`);
  return { mark, ka };
}

/** heal (native, container) and control: up, wedged, then either healed by the ladder or left down. */
async function wedgeCycle(ctx, st, p, i) {
  const { mark, ka } = await plugPhase(ctx, st, p, ANSWERS);
  const rec = { cycle: i, port: ka.port, devnum: ka.devnum };
  const up = await ctx.waitLine(p.proc, sessionUp(p), mark, UP_TIMEOUT_MS);
  rec.up = Boolean(up);
  if (!up) return rec;
  const wedge = await ctx.waitLine('heal-ffs', (d) => d?.ffs === 'wedged' && d.after > 0, mark, 30000);
  const down = await ctx.waitLine(
    p.proc,
    (d) => d?.event === 'session.state' && d.target === p.key && d.state === 'terminating',
    wedge ? wedge.idx : mark,
    30000,
  );
  rec.wedged = Boolean(wedge && down);
  rec.downReason = down?.data.reason ?? null;
  if (!rec.wedged) return rec;
  if (p.kind === 'control') {
    const back = await ctx.waitLine(p.proc, sessionUp(p), down.idx, CONTROL_WAIT_MS);
    rec.recovered = Boolean(back);
    rec.kernel = kernelHeals(ctx, ka.port, down.idx);
    return rec;
  }
  const healed = await ctx.waitLine(
    p.proc,
    (d) => d?.event === 'heal.step' && d.target === p.key && d.outcome === 'up',
    down.idx,
    HEAL_TIMEOUT_MS,
  );
  const back = await ctx.waitLine(p.proc, sessionUp(p), down.idx, healed ? 10000 : 0);
  rec.steps = ctx
    .linesOf(p.proc, down.idx)
    .filter(
      (m) => m.data?.event === 'heal.step' && m.data.target === p.key && m.idx <= (healed?.idx ?? Infinity),
    )
    .map((m) => `${m.data.step}:${m.data.outcome}`);
  rec.healedBy = healed?.data.step ?? null;
  rec.stepMs = healed?.data.ms ?? null;
  rec.wedgeToUpMs = back ? back.t - down.t : null;
  rec.recovered = Boolean(healed && back);
  rec.kernel = kernelHeals(ctx, ka.port, down.idx);
  rec.unwedged = Boolean(await ctx.waitLine('heal-ffs', (d) => d?.ffs === 'unwedged', down.idx, 0));
  return rec;
}

/** A device wedged from the plug: every open fails; after 3 the ladder climbs on its own (trigger attempts). */
async function plugCycle(ctx, st, p, i) {
  const { mark, ka } = await plugPhase(ctx, st, p, 0);
  const rec = { cycle: i, port: ka.port, devnum: ka.devnum };
  const failed = await ctx.waitLine(
    p.proc,
    (d) => d?.event === 'reconnect.failed' && d.target === p.key,
    mark,
    UP_TIMEOUT_MS,
  );
  rec.wedged = Boolean(failed);
  if (!failed) return rec;
  // From the next enable on it answers for good: only a step that resets or reconfigures it brings it back.
  await ctx.vm.sh(`echo 1000000 > ${ANSWERS_FILE}`);
  const healed = await ctx.waitLine(
    p.proc,
    (d) => d?.event === 'heal.step' && d.target === p.key && d.outcome === 'up',
    failed.idx,
    HEAL_TIMEOUT_MS,
  );
  const back = await ctx.waitLine(p.proc, sessionUp(p), failed.idx, healed ? 10000 : 0);
  // Up before the ladder's first step began (its "heal KEY: STEP" line): something else brought it back.
  const firstStep = ctx
    .linesOf(p.proc, mark)
    .find((m) => m.data?.target === p.key && m.data.step && !m.data.event);
  const before = firstStep?.idx ?? healed?.idx ?? Number.POSITIVE_INFINITY;
  rec.upBefore = ctx.linesOf(p.proc, mark).some((m) => m.idx < before && sessionUp(p)(m.data));
  rec.steps = ctx
    .linesOf(p.proc, failed.idx)
    .filter(
      (m) => m.data?.event === 'heal.step' && m.data.target === p.key && m.idx <= (healed?.idx ?? Infinity),
    )
    .map((m) => `${m.data.step}:${m.data.outcome}:${m.data.trigger}`);
  rec.attempts = ctx
    .linesOf(p.proc, mark)
    .filter(
      (m) =>
        m.data?.event === 'reconnect.failed' && m.data.target === p.key && m.idx < (healed?.idx ?? Infinity),
    )
    .map((m) => m.data.error?.code);
  rec.healedBy = healed?.data.step ?? null;
  rec.stepMs = healed?.data.ms ?? null;
  rec.wedgeToUpMs = back ? back.t - failed.t : null;
  rec.recovered = Boolean(healed && back);
  rec.kernel = kernelHeals(ctx, ka.port, failed.idx);
  rec.unwedged = Boolean(await ctx.waitLine('heal-ffs', (d) => d?.ffs === 'unwedged', failed.idx, 0));
  return rec;
}

/** issue 18: the device is wedged from the plug; only `replug request ... reset` may bring it back. */
async function mqttCycle(ctx, st, p, i) {
  const step = p.step?.(i);
  const { mark, ka } = await plugPhase(ctx, st, p, 0);
  const rec = { cycle: i, port: ka.port, devnum: ka.devnum, up: false, asked: step ?? 'ladder' };
  const failed = await ctx.waitLine(
    p.proc,
    (d) => d?.event === 'reconnect.failed' && d.target === p.key,
    mark,
    UP_TIMEOUT_MS,
  );
  rec.wedged = Boolean(failed);
  if (!failed) return rec;
  if (p.doctor && !st.doctor?.[p.doctor]) {
    st.doctor = { ...st.doctor, [p.doctor]: await doctorHeal(ctx, p.doctor) };
    log(`  doctor (${p.doctor}) heal steps: ${JSON.stringify(st.doctor[p.doctor])}`);
  }
  // From now on every enable answers for good: the reset, and only the reset, is what brings it back.
  await ctx.vm.sh(`echo 1000000 > ${ANSWERS_FILE}`);
  rec.upBefore = ctx.linesOf(p.proc, mark).some((m) => sessionUp(p)(m.data));
  rec.climbsBefore = ctx.linesOf(p.proc, mark).filter((m) => m.data?.event === 'heal.step').length;
  const ask = await ctx.now();
  const name = `heal-request-${i}`;
  await ctx.spawn(name, [
    ...REPLUG,
    'request',
    p.id,
    'reset',
    '--target',
    p.key,
    // The CLI runs natively; the agent (native or in the container) answers through the same broker.
    '--mqtt',
    BROKER_URL.native,
    ...(step ? ['--step', step] : []),
    '--json',
    '--timeout',
    String(HEAL_TIMEOUT_MS / 1000),
  ]);
  const answer = await ctx.waitLine(name, (d) => d?.agent === p.id, ask, HEAL_TIMEOUT_MS + 60000);
  const back = await ctx.waitLine(p.proc, sessionUp(p), ask, answer ? 10000 : 0);
  await ctx.kill(name).catch(() => {});
  rec.answer = answer
    ? { status: answer.data.status, data: answer.data.data, error: answer.data.error }
    : null;
  rec.healedBy = answer?.data.data?.step ?? null;
  rec.stepMs = answer?.data.data?.ms ?? null;
  // The CLI's own round trip: the request published to its answer (which waits for the session up).
  rec.wedgeToUpMs = back ? (answer.data.ms ?? null) : null;
  rec.steps = ctx
    .linesOf(p.proc, ask)
    .filter((m) => m.data?.event === 'heal.step' && m.data.target === p.key)
    .map((m) => `${m.data.step}:${m.data.outcome}:${m.data.trigger}`);
  rec.recovered = Boolean(answer?.data.status === 'ok' && back);
  rec.kernel = kernelHeals(ctx, ka.port, ask);
  // rebind unconfigures and configures again without a kernel line: the function's DISABLE/ENABLE says so.
  rec.unwedged = Boolean(await ctx.waitLine('heal-ffs', (d) => d?.ffs === 'unwedged', ask, 0));
  if (step) rec.proof = STEP_PROOF[step](rec);
  return rec;
}

/**
 * `replug doctor --json`'s heal section in `runtime`, run while the gadget is plugged (reauthorize's check
 * needs a device): { step: 'ok' | 'no: why' }, or { error } when doctor itself failed.
 */
async function doctorHeal(ctx, runtime) {
  const r = await ctx.vm.sh(`${REPLUG.join(' ')} doctor --json`, {
    runtime,
    net: runtime === 'native' ? undefined : NET,
    check: false,
    timeoutMs: 120000,
  });
  try {
    const heal = JSON.parse(r.stdout.trim().split('\n').pop()).heal;
    return Object.fromEntries(heal.map((c) => [c.step, c.ok ? 'ok' : `no: ${c.reason}`]));
  } catch {
    return { error: `doctor exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}` };
  }
}

export function healScenario() {
  return {
    name: 'heal-ffs-wedge',
    runtimes: PHASES.map((p) => p.label),
    describe: `a FunctionFS gadget that wedges after ${ANSWERS} bulk transfers: --heal ${STEPS} natively and in a container, a control with healing off, and reset (the ladder, and each named step) through MQTT in both`,

    async setup(ctx, st) {
      st.rows = Object.fromEntries(PHASES.map((p) => [p.name, []]));
      st.startMark = await ctx.now();
      await ctx.startUdevd();
      // One UDC: the Loopback gadget of other scenarios must not hold it.
      await ctx.gadgetUnplug().catch(() => {});
      await ctx.vm.sh(ffs(`setup 0x${GADGET.vid} 0x${GADGET.pid} ${PHASES[0].serial}`));
      let mark = await ctx.now();
      await ctx.spawn('heal-ffs', [
        'node',
        '/lab/guest/ffs-wedge.mjs',
        '/dev/ffs-wedge',
        String(ANSWERS),
        ANSWERS_FILE,
      ]);
      if (!(await ctx.waitLine('heal-ffs', (d) => d?.ffs === 'ready', mark, 60000)))
        throw new Error(
          `ffs-wedge did not start: ${ctx
            .linesOf('heal-ffs', mark)
            .map((m) => m.line ?? JSON.stringify(m.data))
            .join(' | ')}`,
        );
      await ctx.vm.sh('true', { runtime: CONTAINER, net: NET });
      mark = await ctx.now();
      await ctx.spawn('heal-broker', [
        'node',
        '/lab/guest/broker.mjs',
        SOCK,
        `127.0.0.1:${PORT}`,
        `10.99.${NET}.1:${PORT}`,
      ]);
      if (!(await ctx.waitLine('heal-broker', (d) => d?.ready, mark, 60000)))
        throw new Error('broker did not start');
      for (const p of Object.values(AGENTS)) {
        await ctx.spawn(
          p.proc,
          [
            ...REPLUG,
            'agent',
            '--id',
            p.id,
            '--runtime-label',
            p.name,
            '--mqtt',
            p.mqtt,
            '--state-dir',
            `/tmp/replug-state-heal-${p.name}`,
            '--log-format',
            'json',
            '--target',
            p.key,
            ...DRIVER,
            ...p.args,
          ],
          { runtime: p.spawn },
        );
      }
      for (const p of Object.values(AGENTS)) {
        const started = await ctx.waitLine(
          p.proc,
          (d) => typeof d?.msg === 'string' && d.msg.startsWith(`agent ${p.id} started`),
          mark,
          240000,
        );
        if (!started) throw new Error(`agent ${p.id} did not start`);
      }
    },

    async cycle(ctx, st, i) {
      for (const p of PHASES) {
        if (p.only && !p.only(i)) continue;
        const run = { mqtt: mqttCycle, plug: plugCycle }[p.kind] ?? wedgeCycle;
        const rec = await run(ctx, st, p, i);
        log(`  ${p.label} cycle ${i}: ${JSON.stringify(rec)}`);
        st.rows[p.name].push(rec);
      }
      await ctx.vm.sh(ffs('unplug'));
      st.plugged = false;
    },

    async check(ctx, st) {
      const exits = ctx.log.events.filter(
        (m) =>
          m.ev === 'exit' &&
          m.idx >= st.startMark &&
          (Object.values(AGENTS).some((a) => m.name === a.proc) || m.name === 'heal-ffs'),
      );
      const table = [
        ['runtime', 'back', 'step that did it', 'wedge->up ms p50/max', 'step ms p50/max', 'kernel'],
      ];
      const rows = PHASES.map((p) => {
        const recs = st.rows[p.name];
        const problems = [];
        const cycles = recs.length;
        const reconnects = recs.filter((r) => r.recovered).length;
        // A named step doctor said cannot work here is expected down: shown next to the prediction, and a
        // contradiction (predicted no, came back; predicted ok, did not) fails like any miss.
        const predicted = (r) => {
          const v = r.asked && st.doctor?.[p.doctor]?.[r.asked];
          return !v || v === 'ok';
        };
        for (const r of recs) {
          if (p.step && r.recovered && !predicted(r))
            problems.push(
              `cycle ${r.cycle}: ${r.asked} came back, but doctor said ${st.doctor[p.doctor][r.asked]}`,
            );
          if (p.step && !predicted(r)) continue;
          if (p.step && r.recovered && r.healedBy !== r.asked)
            problems.push(`cycle ${r.cycle}: asked ${r.asked}, the answer says ${r.healedBy}`);
          if (p.step && r.recovered && !r.proof)
            problems.push(
              `cycle ${r.cycle}: ${r.asked} back without its own proof (kernel ${JSON.stringify(r.kernel)}, function re-enabled ${r.unwedged})`,
            );
          if ((p.kind === 'heal' || p.kind === 'control') && !r.up)
            problems.push(`cycle ${r.cycle}: the session never came up before the wedge`);
          else if (!r.wedged) problems.push(`cycle ${r.cycle}: the device never wedged the session`);
          else if (p.kind !== 'control' && !r.recovered)
            problems.push(
              `cycle ${r.cycle}: not back (steps ${JSON.stringify(r.steps)}, answer ${JSON.stringify(r.answer ?? null)})`,
            );
          if (p.kind !== 'control' && r.recovered && !(r.kernel ?? []).length && !r.unwedged)
            problems.push(
              `cycle ${r.cycle}: back, but the kernel logged no reset or re-enumeration of ${r.port}`,
            );
          if ((p.kind === 'mqtt' || p.kind === 'plug') && r.upBefore)
            problems.push(`cycle ${r.cycle}: the session came up on a device wedged from the plug`);
          if (p.kind === 'mqtt' && r.climbsBefore)
            problems.push(`cycle ${r.cycle}: the session was up or the ladder climbed before the request`);
        }
        const expected = p.kind === 'control' ? 0 : p.step ? recs.filter((r) => predicted(r)).length : cycles;
        if (p.step && cycles >= ONE_STEPS.length)
          for (const s of ONE_STEPS)
            if (!recs.some((r) => r.asked === s)) problems.push(`${s} was never asked`);
        if (p.step) {
          const doc = st.doctor?.[p.doctor] ?? {};
          const per = ONE_STEPS.map((s) => {
            const mine = recs.filter((r) => r.asked === s);
            const proven = mine.filter((r) => r.recovered && r.proof).length;
            return `${s}: doctor ${doc[s] ?? doc.error ?? '?'}, measured ${proven}/${mine.length} back with proof`;
          });
          log(`  ${p.label}: ${per.join('; ')}`);
        }
        if (reconnects !== expected) problems.push(`back ${reconnects}/${cycles}, want ${expected}`);
        for (const e of exits.filter((m) => m.name === p.proc))
          problems.push(`agent exited (code ${e.code})`);
        if (p.kind !== 'control')
          for (const e of exits.filter((m) => m.name === 'heal-ffs'))
            problems.push(`ffs-wedge exited (code ${e.code})`);
        const by = {};
        for (const r of recs) if (r.healedBy) by[r.healedBy] = (by[r.healedBy] ?? 0) + 1;
        const wedgeToUpMs = stats(recs.map((r) => r.wedgeToUpMs));
        const stepMs = stats(recs.map((r) => r.stepMs));
        const fmt = (s) => (s ? `${s.p50}/${s.max}` : '-');
        const kernel = [
          ...new Set(
            recs.flatMap((r) =>
              (r.kernel ?? []).map((l) => l.replace(/^usb \S+: /, '').replace(/number \d+/, 'number N')),
            ),
          ),
        ];
        table.push([
          p.label,
          `${reconnects}/${cycles}${expected !== cycles ? ` (want ${expected})` : ''}`,
          Object.entries(by)
            .map(([s, n]) => `${s} ${n}x`)
            .join(', ') || '-',
          fmt(wedgeToUpMs),
          fmt(stepMs),
          kernel.join('; ').slice(0, 90) || '-',
        ]);
        return {
          runtime: p.label,
          cycles,
          reconnects,
          expected,
          healedBy: by,
          ...(p.doctor ? { doctor: st.doctor?.[p.doctor] ?? null } : {}),
          wedgeToUpMs,
          stepMs,
          records: recs,
          ok: problems.length === 0,
          problems,
        };
      });
      const w = table[0].map((_, c) => Math.max(...table.map((r) => String(r[c]).length)));
      for (const r of table) log(`  | ${r.map((c, k) => String(c).padEnd(w[k])).join(' | ')} |`);
      log(
        '  wedge->up: from the session leaving up (probe failed), or the first failed open (wedged at plug), to the session up again; over MQTT: the request round trip',
      );
      return rows;
    },

    async teardown(ctx) {
      for (const p of Object.values(AGENTS)) await ctx.kill(p.proc).catch(() => {});
      await ctx.kill('heal-broker').catch(() => {});
      await ctx.vm.sh(ffs('unplug')).catch(() => {});
      await ctx.kill('heal-ffs').catch(() => {});
    },
  };
}
