#!/usr/bin/env node
/**
 * Issue 12 and 10 figures for `replug watch` under hostile input, on the real CLI with `replug broker`:
 *   node bench/hostile-watch.mjs [--cli dist/src/bin/replug.js] [--only osc,ids,suback,offline,lost,burst,seq,reset]
 *   osc      a retained target state whose target holds an OSC sequence: escapes in --once and live output
 *   ids      100,000 fake agent ids: watch's peak RSS and how many agents it keeps
 *   suback   an agent-role user runs watch --once: what it prints, its exit code
 *   offline  an offline agent with a target that was up: how --once shows the target
 *   lost     the broker dies under a live watch: how the agent is shown 3 s later
 *   burst    5 agents publish events every 20 ms while 20,000 hostile payloads arrive: their delay
 *   seq      one event with seq 2^53-1, then 280 real events: how many watch accepts
 *   reset    an agent's state dir is wiped (boot counter back to 1): what watch does with its messages
 * `--cli` measures another build ("before"). Figures are printed, never asserted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const cli = path.resolve(opt('cli', path.join(root, 'dist/src/bin/replug.js')));
if (!existsSync(cli)) {
  console.error(`bench/hostile-watch.mjs: ${cli} missing; run \`npm run build\` first`);
  process.exit(2);
}
const only = new Set(opt('only', 'osc,ids,suback,offline,lost,burst,seq,reset').split(','));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(path.join(os.tmpdir(), 'hostile-watch-bench-'));
const T0 = Date.now();
const line = (label, value, goal) =>
  console.log(`  ${label.padEnd(46)} ${String(value).padEnd(24)} goal: ${goal}`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(args, { stdin } = {}) {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH, HOME: work, NO_COLOR: '' },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (stdin !== undefined) child.stdin.end(stdin);
  const out = { stdout: '', stderr: '', lines: [] };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out.stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    const at = Date.now();
    for (const l of parts) if (l) out.lines.push({ at, text: l });
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    out.stderr += d;
  });
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

async function broker(extra = []) {
  const port = await freePort();
  const b = run(['broker', '--port', String(port), ...extra]);
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 });
      await c.endAsync();
      return { ...b, url, port };
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`broker did not start: ${b.out.stderr}`);
}

async function stop(p, signal = 'SIGINT') {
  p.child.kill(signal);
  const r = await Promise.race([p.exited, sleep(5000).then(() => undefined)]);
  if (!r) {
    p.child.kill('SIGKILL');
    return p.exited;
  }
  return r;
}

const status = (state, session, ts = Date.now()) => ({ state, session, ts });
const event = (seq, session, ts = Date.now()) => ({
  type: 'source.status',
  source: 'devfs',
  status: { state: 'active' },
  seq,
  session,
  ts,
});
function target(session, over = {}) {
  return {
    target: '1209:0001',
    vid: '1209',
    pid: '0001',
    state: 'up',
    since: T0,
    attempts: 1,
    lastOutcome: 'succeeded',
    reconnects: { count: 1, ok: 1, failed: 0, p50Ms: 10, p95Ms: 10 },
    session,
    ts: Date.now(),
    ...over,
  };
}
const health = (session) => ({
  uptimeS: 1,
  memory: { rssBytes: 1, heapUsedBytes: 1 },
  queue: { depth: 0, dropped: 0, capacity: 10 },
  sources: {},
  broker: { connected: true, reconnects: 0 },
  session,
  ts: Date.now(),
});

async function pub(url, msgs, o = {}) {
  const c = await mqtt.connectAsync(url, o);
  for (const [topic, payload, retain] of msgs)
    await c.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
      qos: 1,
      retain: !!retain,
    });
  await c.endAsync();
}

/**
 * Waits on what the watch shows, never a fixed time: on a loaded machine a watch may not have subscribed
 * a second after its start, and whatever is published before then is not what is being measured.
 */
async function until(check, capMs) {
  const end = Date.now() + capMs;
  while (!check() && Date.now() < end) await sleep(50);
  return check();
}

/** A retained status for `ready-probe`; resolves once the watch shows it, so it has subscribed. */
async function watchReady(w, url) {
  await pub(url, [['replug/ready-probe/status', status('online', 1), true]]);
  if (!(await until(() => w.out.stdout.includes('ready-probe'), 30000)))
    throw new Error(`watch showed nothing within 30 s: ${w.out.stderr.slice(0, 200)}`);
}

/** Resolves once the watch's --json output has not grown for `quietMs` (at most capMs). */
async function quiet(w, quietMs = 2000, capMs = 60000) {
  const end = Date.now() + capMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < end) {
    if (w.out.lines.length !== last) {
      last = w.out.lines.length;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(100);
  }
}

const status2 = (p) => {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
};

async function osc() {
  console.log('\nosc: a retained target state whose target is 1209:0001:\\e]0;PWNED\\a...');
  const b = await broker();
  const serial = '\u001b]0;PWNED\u0007\u001b[2J';
  const key = `1209-0001-${serial.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
  await pub(b.url, [
    ['replug/evil/status', status('online', 1), true],
    [`replug/evil/target/${key}/state`, target(1, { target: `1209:0001:${serial}`, serial }), true],
  ]);
  const once = run(['watch', '--once', '--mqtt', b.url, '-W', '3']);
  await once.exited;
  const live = run(['watch', '--mqtt', b.url]);
  await sleep(2500);
  await stop(live);
  await stop(b);
  const esc = (t) => t.split('\u001b]').length - 1 + (t.split('\u001b[').length - 1);
  line('escape sequences in --once output', esc(once.out.stdout), '0');
  line('escape sequences in the live view (no TTY)', esc(live.out.stdout), '0');
}

async function ids() {
  const n = Number(opt('ids', '100000'));
  console.log(`\nids: ${n} fake agent ids (one status each)`);
  const b = await broker();
  const w = run(['watch', '--mqtt', b.url]);
  await watchReady(w, b.url);
  const idle = status2(w);
  const c = await mqtt.connectAsync(b.url);
  for (let i = 0; i < n; i++) {
    c.publish(`replug/fake-${i}/status`, JSON.stringify(status('online', 1)), { qos: 0 });
    if (i % 2000 === 0) await sleep(5);
  }
  await c.endAsync();
  const keptSoFar = () =>
    Math.max(0, ...[...w.out.stdout.matchAll(/^replug watch · (\d+) agents/gm)].map((m) => Number(m[1])));
  // Until the view is full and says it dropped the rest (or 60 s): what it kept, not how fast.
  await until(() => keptSoFar() >= Math.min(n, 10000) && /agent limit/.test(w.out.stdout), 60000);
  await sleep(1000);
  const peak = status2(w);
  const kept = keptSoFar();
  await stop(w);
  await stop(b);
  line(
    'watch peak RSS before / after the ids',
    `${(idle / 1048576).toFixed(0)} / ${(peak / 1048576).toFixed(0)} MB`,
    'bounded (< 150 MB)',
  );
  line('agents kept (largest frame)', kept, '10000 (--max-agents)');
  const said =
    w.out.stdout
      .split('\n')
      .filter((l) => /agent limit/.test(l))
      .at(-1) ?? '';
  line('says what it dropped', said ? 'yes' : 'no', 'yes');
}

async function suback() {
  console.log('\nsuback: watch --once as an agent-role user (the ACL refuses replug/+/#)');
  const users = path.join(work, 'users');
  execFileSync(process.execPath, [cli, 'broker', 'passwd', users, 'pi1', '--role', 'agent'], {
    input: 'secret\n',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const b = await broker(['--users', users]);
  const w = run(['watch', '--once', '--mqtt', b.url, '-u', 'pi1', '-P', 'secret', '-W', '3']);
  const r = await w.exited;
  await stop(b);
  line('exit code', r.code, '1');
  line('stderr', JSON.stringify(w.out.stderr.trim()).slice(0, 90), 'the refusal, per broker');
}

async function offline() {
  console.log('\noffline: an agent whose status is offline, with a target state that was up');
  const b = await broker();
  await pub(b.url, [
    ['replug/gone/status', status('offline', 3), true],
    ['replug/gone/target/1209-0001/state', target(3), true],
  ]);
  const w = run(['watch', '--once', '--mqtt', b.url, '-W', '3']);
  await w.exited;
  await stop(b);
  const row = w.out.stdout.split('\n').find((l) => l.includes('gone')) ?? '';
  line('the target cell', /(last: )?up\b/.exec(row)?.[0] ?? '?', "'last: up', not 'up'");
}

async function lost() {
  console.log('\nlost: the broker dies under a live watch');
  const b = await broker();
  await pub(b.url, [['replug/pi/status', status('online', 1), true]]);
  const w = run(['watch', '--mqtt', b.url]);
  await until(() => /[●○] pi\b/.test(w.out.stdout), 30000);
  b.child.kill('SIGKILL');
  await b.exited;
  await sleep(3000);
  await stop(w);
  const frames = w.out.stdout.split('\n\n').filter((f) => f.includes(' pi'));
  const row = (frames.at(-1) ?? '').split('\n').find((l) => /[●○] pi\b/.test(l)) ?? '';
  line(
    'the agent 3 s after the link was lost',
    row
      .trim()
      .split(/\s{2,}/)
      .slice(0, 2)
      .join(' | ') || '?',
    "'unknown · seen Ns ago'",
  );
}

function pct(sorted, p) {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function burst() {
  const n = Number(opt('burst', '20000'));
  console.log(`\nburst: 5 agents publish an event every 20 ms; ${n} hostile payloads arrive at once`);
  const b = await broker();
  const w = run(['watch', '--json', '--mqtt', b.url]);
  await watchReady(w, b.url);
  // Baseline: a bare MQTT.js subscriber in this process; its delay is the broker's and the transport's.
  const raw = await mqtt.connectAsync(b.url);
  const rawDelays = [];
  raw.on('message', (topic, p) => {
    if (!/^replug\/legit-[1-4]\/event$/.test(topic)) return;
    try {
      const ts = JSON.parse(String(p)).ts;
      if (ts >= rawSince) rawDelays.push(Date.now() - ts);
    } catch {}
  });
  let rawSince = Number.POSITIVE_INFINITY;
  await raw.subscribeAsync('replug/+/event', { qos: 0 });
  await sleep(1000);
  const agents = await Promise.all([0, 1, 2, 3, 4].map(() => mqtt.connectAsync(b.url)));
  let seq = 0;
  let stopAgents = false;
  const ticking = (async () => {
    while (!stopAgents) {
      seq++;
      for (const [i, c] of agents.entries())
        c.publish(`replug/legit-${i}/event`, JSON.stringify(event(seq, 1)), { qos: 0 });
      await sleep(20);
    }
  })();
  await sleep(2000);
  const hostile = await mqtt.connectAsync(b.url);
  // Costly to check: valid JSON that fails the schema late (500 stray properties; 300 bad devices).
  const props = JSON.stringify(
    Object.fromEntries([
      ['type', 'device.added'],
      ['seq', 1],
      ['session', 1],
      ['ts', 1],
      ...Array.from({ length: 500 }, (_, i) => [`p${i}`, i]),
    ]),
  );
  const devs = JSON.stringify({
    devices: Array.from({ length: 300 }, (_, i) => ({
      key: 'x',
      vid: 'zz',
      pid: '0001',
      bus: 1,
      address: i,
    })),
    count: 1,
    session: 1,
    ts: 1,
  });
  const t0 = Date.now();
  rawSince = t0 - 200;
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    const topic =
      kind === 0
        ? `replug/h-${i}/event`
        : kind === 1
          ? `replug/h-${i % 50}/devices`
          : kind === 2
            ? 'replug/legit-0/event'
            : `replug/h-${i}/status`;
    const payload = kind === 1 ? devs : kind === 3 ? '{"state":"online","session":"x"' : props;
    hostile.publish(topic, payload, { qos: 0 });
    if (i % 1000 === 0) await sleep(1);
  }
  const sentIn = Date.now() - t0;
  await sleep(6000);
  stopAgents = true;
  await ticking;
  await hostile.endAsync();
  await Promise.all(agents.map((c) => c.endAsync()));
  await sleep(500);
  await stop(w);
  await stop(b);
  const delays = { own: [], used: [] };
  for (const l of w.out.lines) {
    if (!l.text.includes('"kind":"event"') || !l.text.includes('"agent":"legit-')) continue;
    const j = JSON.parse(l.text);
    if (j.payload.ts >= t0 - 200) delays[j.agent === 'legit-0' ? 'used' : 'own'].push(l.at - j.payload.ts);
  }
  for (const d of Object.values(delays)) d.sort((x, y) => x - y);
  const fig = (d) => `${pct(d, 50)} / ${pct(d, 99)} / ${d.at(-1)} ms (${d.length})`;
  line('hostile payloads sent in', `${sentIn} ms`, '(figure)');
  line('legit-1..4 events: delay median / p99 / max', fig(delays.own), 'max < 500 ms');
  line('legit-0 (its id used for 5,000 of them)', fig(delays.used), '(figure)');
  rawDelays.sort((x, y) => x - y);
  line('legit-1..4 at a bare MQTT.js subscriber', fig(rawDelays), '(the broker and transport alone)');
  await raw.endAsync();
}

async function seqScenario() {
  console.log('\nseq: one schema-valid event with seq 2^53-1, then 280 real events of that agent');
  const b = await broker();
  const w = run(['watch', '--json', '--mqtt', b.url]);
  await watchReady(w, b.url);
  await pub(b.url, [
    ['replug/pi/status', status('online', 1), true],
    ['replug/pi/event', event(2 ** 53 - 1, 1)],
  ]);
  await pub(
    b.url,
    Array.from({ length: 280 }, (_, i) => ['replug/pi/event', event(i + 1, 1)]),
  );
  await quiet(w);
  await stop(w);
  await stop(b);
  const evs = w.out.lines
    .map((l) => JSON.parse(l.text))
    .filter((j) => j.topic === 'replug/pi/event' || j.kind === 'event');
  const accepted = evs.filter((j) => j.kind === 'event' && j.payload.seq <= 280).length;
  const dup = evs.filter((j) => j.reason === 'duplicate').length;
  line('real events accepted', `${accepted} of 280 (${dup} duplicate)`, '280');
}

async function reset() {
  console.log('\nreset: an agent (session 5, 100 events) is wiped and comes back as session 1');
  const b = await broker();
  const w = run(['watch', '--json', '--mqtt', b.url]);
  await watchReady(w, b.url);
  await pub(b.url, [
    ['replug/pi/status', status('online', 5), true],
    ['replug/pi/health', health(5), true],
    ['replug/pi/target/1209-0001/state', target(5), true],
    ...Array.from({ length: 100 }, (_, i) => ['replug/pi/event', event(i + 1, 5)]),
  ]);
  await pub(b.url, [
    ['replug/pi/status', status('online', 1), true],
    ['replug/pi/health', health(1), true],
    ['replug/pi/target/1209-0001/state', target(1), true],
    ...Array.from({ length: 150 }, (_, i) => ['replug/pi/event', event(i + 1, 1)]),
  ]);
  await quiet(w);
  await stop(w);
  await stop(b);
  const after = w.out.lines.map((l) => JSON.parse(l.text)).slice(-153);
  const tally = {};
  for (const j of after)
    tally[j.kind === 'rejected' ? j.reason : 'accepted'] =
      (tally[j.kind === 'rejected' ? j.reason : 'accepted'] ?? 0) + 1;
  line('the 153 messages after the wipe', JSON.stringify(tally), '{"accepted":153}');
}

console.log(`bench/hostile-watch.mjs: ${path.relative(process.cwd(), cli) || cli}`);
try {
  if (only.has('osc')) await osc();
  if (only.has('ids')) await ids();
  if (only.has('suback')) await suback();
  if (only.has('offline')) await offline();
  if (only.has('lost')) await lost();
  if (only.has('burst')) await burst();
  if (only.has('seq')) await seqScenario();
  if (only.has('reset')) await reset();
} finally {
  rmSync(work, { recursive: true, force: true });
}
