#!/usr/bin/env node
/**
 * Fault runs of the durable event queue (issue 10, "The durable queue keeps its promise under disk
 * faults"): the real `replug agent` CLI on a fake USB tree, storming plug/unplug cycles, publishing through
 * Mosquitto, while its --state-dir is broken with real filesystem tools. Run as root after `npm run build`:
 *
 *   node bench/queue-faults.mjs [--only full,readonly,...] [--cycles 100] [--cli path/to/replug.js]
 *
 * Runs (each with a fresh agent id and state dir):
 *   full       the state dir is a 64 KiB tmpfs; the queue file fills it, then a remount makes room
 *   readonly   the agent runs unprivileged and its state dir is made read-only (chmod a-w), then writable
 *   immutable  the queue file gets `chattr +i`, later `chattr -i`
 *   deleted    the state dir is removed (rm -rf) while the agent runs
 *   outage     capacity 500, the broker is cut off during the storm: file size, health dropped vs real gap
 *   bigfile    the agent starts on a queue file larger than V8's longest string (~512 MiB)
 *   torn, half, powercut   kill -9 mid-storm, then the queue file loses its torn last line, its second
 *              half, or everything written in the last 1.5 s (what a power cut does to unsynced data);
 *              counts seqs a restarted agent hands out again
 * For each: events produced (every event is logged with an `event` field at debug level), delivered
 * (unique session+seq at the subscriber), stuck (health.queue.depth once delivery settled while
 * connected), lost (never delivered after the fault was undone and the agent restarted, minus
 * health.queue.dropped), and the warn/error lines the agent logged during the fault.
 * Figures are printed with goals and PASS/FAIL, never asserted.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tree } from './lib/fake-tree.mjs';
import {
  arg,
  isEventLog,
  ROOT,
  sleep,
  startAgent,
  startMosquitto,
  startProxy,
  startSubscriber,
} from './lib/procs.mjs';

const cli = path.resolve(arg('cli', path.join(ROOT, 'dist/src/bin/replug.js')));
if (!existsSync(cli)) {
  console.error(`bench/queue-faults.mjs: ${cli} missing; run \`npm run build\` first`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.log('SKIP bench/queue-faults.mjs: needs root (tmpfs mounts, chattr, an unprivileged agent)');
  process.exit(0);
}
const CYCLES = arg('cycles', 100);
const ONLY = String(arg('only', '')).split(',').filter(Boolean);
const QUEUE_FILE = 'mqtt-events.jsonl';
const sh = (cmd, ...args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

async function storm(tree, cycles, gapMs = 25) {
  for (let i = 0; i < cycles; i++) {
    tree.plug();
    await sleep(gapMs);
    tree.unplug();
    await sleep(gapMs);
  }
}

/**
 * Waits until the subscriber has every event the agent logged and the agent has been quiet for 1.5 s
 * (detection reports trail a replug by the settle window), or nothing new arrived for quietMs.
 */
async function settle(sub, id, produced, { quietMs = 4000, maxMs = 25_000 } = {}) {
  const start = Date.now();
  let last = -1;
  let lastProduced = -1;
  let lastChange = Date.now();
  let producedChange = Date.now();
  for (;;) {
    const n = sub.unique(id);
    const p = produced();
    if (n !== last) {
      last = n;
      lastChange = Date.now();
    }
    if (p !== lastProduced) {
      lastProduced = p;
      producedChange = Date.now();
    }
    if (n >= p && Date.now() - producedChange > 1500) break;
    if (Date.now() - lastChange > quietMs || Date.now() - start > maxMs) break;
    await sleep(100);
  }
  await sleep(1200); // one more health (interval 1 s) after the last delivery
}

function warnLines(agent, from = 0) {
  const lines = agent.lines.slice(from).filter((l) => l.level >= 40 && !isEventLog(l));
  return {
    n: lines.length,
    dependency: lines.filter((l) => /inside a dependency/.test(l.msg ?? '')).length,
    queueing: lines.filter((l) => /could not queue event/.test(l.msg ?? '')).length,
    sample: [...new Set(lines.map((l) => String(l.msg ?? '').slice(0, 140)))].slice(0, 4),
  };
}

/** Seqs below the highest delivered one that never arrived: events lost (or dropped at the bound). */
function seqGaps(sub, id) {
  const seqs = new Set(sub.of(id).map((e) => e.seq));
  return Math.max(0, ...seqs) - seqs.size;
}

function queueHealth(sub, id) {
  const h = sub.health.get(id);
  return h?.queue ?? {};
}

function verdict(ok) {
  return ok ? 'PASS' : 'FAIL';
}

function print(name, rows, goals) {
  console.log(`\n--- ${name}`);
  for (const [k, v] of Object.entries(rows))
    console.log(`  ${k.padEnd(22)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  let all = true;
  for (const [what, ok] of goals) {
    all &&= ok;
    console.log(`  goal: ${what.padEnd(48)} ${verdict(ok)}`);
  }
  return all;
}

function tmpfs(dir, size) {
  mkdirSync(dir, { recursive: true });
  sh('mount', '-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'replug-queue-bench', dir);
}

function umount(dir) {
  try {
    sh('umount', '-l', dir);
  } catch {
    // not mounted
  }
}

/**
 * One disk-fault run: warm up, break the disk, storm, settle (stuck = depth while connected), undo,
 * storm, settle, restart the agent on the same dir and let it drain (lost = what never arrived).
 */
async function diskFault(ctx, name, { prepare, breakIt, undo, uid, cleanup }) {
  const id = `qf-${name}`;
  const base = mkdtempSync(path.join(os.tmpdir(), `queue-faults-${name}-`));
  const stateDir = path.join(base, 'state');
  const tree = new Tree(`queue-faults-${name}-`);
  try {
    chmodSync(base, 0o755);
    await prepare(stateDir);
    const start = () =>
      startAgent({
        cli,
        id,
        tree,
        stateDir,
        mqttUrl: ctx.broker.url,
        uid,
        extra: ['--health-interval', '1000'],
      });
    let agent = start();
    await agent.waitFor((l) => /^connected to broker/.test(l.msg ?? ''), 20_000, 'connect');
    await storm(tree, 5);
    await settle(ctx.sub, id, () => agent.produced, { quietMs: 2000 });
    const warmDelivered = ctx.sub.unique(id);
    const mark = agent.lines.length;
    const faultAt = Date.now();
    await breakIt(stateDir);
    await storm(tree, CYCLES);
    await settle(ctx.sub, id, () => agent.produced);
    const during = {
      produced: agent.produced,
      delivered: ctx.sub.unique(id),
      stuck: queueHealth(ctx.sub, id).depth,
      health: queueHealth(ctx.sub, id),
      lines: warnLines(agent, mark),
      lastDeliveryS: ((Math.max(...ctx.sub.of(id).map((e) => e.at)) - faultAt) / 1000).toFixed(1),
    };
    await undo(stateDir);
    await sleep(6000); // the agent retries its disk every 5 s
    await storm(tree, 5);
    await settle(ctx.sub, id, () => agent.produced, { quietMs: 2000 });
    const afterUndo = { stuck: queueHealth(ctx.sub, id).depth, health: queueHealth(ctx.sub, id) };
    let produced = agent.produced;
    await agent.stop();
    agent = start();
    await agent.waitFor((l) => /^connected to broker/.test(l.msg ?? ''), 20_000, 'connect again');
    await settle(ctx.sub, id, () => produced + agent.produced, { quietMs: 3000, maxMs: 15_000 });
    produced += agent.produced;
    const dropped = queueHealth(ctx.sub, id).dropped ?? 0;
    await agent.stop();
    const lost = seqGaps(ctx.sub, id) - dropped;
    return print(
      `${name}: ${ctx.title}`,
      {
        'warm-up delivered': warmDelivered,
        produced: during.produced,
        'delivered (fault)': during.delivered,
        'stuck (fault)': during.stuck,
        'last delivery': `${during.lastDeliveryS} s after the fault`,
        'health.queue (fault)': during.health,
        'warn/error lines': `${during.lines.n} (${during.lines.dependency} "inside a dependency", ${during.lines.queueing} "could not queue event")`,
        'log sample': during.lines.sample,
        'stuck after undo': afterUndo.stuck,
        'health.queue (undone)': afterUndo.health,
        'lost after restart': `${lost} of ${produced} (seqs never delivered, less health.queue.dropped)`,
      },
      [
        ['no event stuck while connected during the fault', during.stuck === 0],
        ['said once (<= 2 warn/error lines during the fault)', during.lines.n <= 2],
        ['nothing lost after undo + restart', lost === 0],
      ],
    );
  } finally {
    await cleanup?.(stateDir);
    tree.cleanup();
    rmSync(base, { recursive: true, force: true });
  }
}

const runs = {
  full: (ctx) =>
    diskFault({ ...ctx, title: 'disk full (64 KiB tmpfs state dir)' }, 'full', {
      prepare: (dir) => tmpfs(dir, '64k'),
      breakIt: async () => {}, // the storm fills it
      undo: async (dir) => sh('mount', '-o', 'remount,size=16m', dir),
      cleanup: umount,
    }),
  readonly: (ctx) =>
    diskFault({ ...ctx, title: 'read-only state dir (chmod a-w, agent as uid 65534)' }, 'readonly', {
      uid: 65534,
      prepare: async (dir) => {
        mkdirSync(dir);
        chownSync(dir, 65534, 65534);
      },
      breakIt: async (dir) => chmodSync(dir, 0o555),
      undo: async (dir) => chmodSync(dir, 0o755),
    }),
  immutable: (ctx) =>
    diskFault({ ...ctx, title: 'queue file immutable (chattr +i, ext4)' }, 'immutable', {
      prepare: async (dir) => mkdirSync(dir),
      breakIt: async (dir) => sh('chattr', '+i', path.join(dir, QUEUE_FILE)),
      undo: async (dir) => sh('chattr', '-i', path.join(dir, QUEUE_FILE)),
      cleanup: async (dir) => {
        try {
          sh('chattr', '-i', path.join(dir, QUEUE_FILE));
        } catch {
          // already undone
        }
      },
    }),
  deleted: (ctx) =>
    diskFault({ ...ctx, title: 'state dir deleted while running (rm -rf)' }, 'deleted', {
      prepare: async (dir) => mkdirSync(dir),
      breakIt: async (dir) => rmSync(dir, { recursive: true, force: true }),
      undo: async () => {},
    }),
  outage: outageRun,
  bigfile: bigFileRun,
  torn: (ctx) => crashRun(ctx, 'torn', 'torn last line'),
  half: (ctx) => crashRun(ctx, 'half', 'second half of the file lost'),
  powercut: (ctx) => crashRun(ctx, 'powercut', 'the last 1.5 s of writes lost'),
};

/** Broker cut off mid-storm with capacity 500: the file's size, and health's dropped vs the real gap. */
async function outageRun(ctx) {
  const id = 'qf-outage';
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'queue-faults-outage-'));
  const tree = new Tree('queue-faults-outage-');
  const proxy = await startProxy(ctx.broker.port);
  try {
    const agent = startAgent({
      cli,
      id,
      tree,
      stateDir,
      mqttUrl: proxy.url,
      extra: ['--health-interval', '1000', '--queue-capacity', '500'],
    });
    await agent.waitFor((l) => /^connected to broker/.test(l.msg ?? ''), 20_000, 'connect');
    const storming = storm(tree, 150, 5);
    await sleep(300);
    await proxy.cut();
    await storming;
    await storm(tree, 150, 5);
    await sleep(500);
    const file = path.join(stateDir, QUEUE_FILE);
    const fileLines = readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    const fileBytes = statSync(file).size;
    await proxy.restore();
    await settle(ctx.sub, id, () => agent.produced, { quietMs: 4000 });
    const seqs = [...new Set(ctx.sub.of(id).map((e) => e.seq))].sort((a, b) => a - b);
    const maxSeq = seqs.at(-1) ?? 0;
    const gap = maxSeq - seqs.length;
    const dropped = queueHealth(ctx.sub, id).dropped;
    await agent.stop();
    return print(
      'outage: broker cut off mid-storm, --queue-capacity 500',
      {
        produced: agent.produced,
        'file during outage': `${fileLines} lines, ${(fileBytes / 1024).toFixed(0)} KiB`,
        delivered: seqs.length,
        'highest seq': maxSeq,
        'real gap': gap,
        'health.queue.dropped': dropped,
      },
      [
        ['file bounded (<= 2 x capacity + 2 lines)', fileLines <= 1002],
        ['health.queue.dropped == real gap', dropped === gap],
      ],
    );
  } finally {
    await proxy.stop();
    tree.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** A queue file larger than V8's longest string (an old agent's unbounded outage file). */
async function bigFileRun(ctx) {
  const id = 'qf-bigfile';
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'queue-faults-bigfile-'));
  const tree = new Tree('queue-faults-bigfile-');
  try {
    const file = path.join(stateDir, QUEUE_FILE);
    const device = { key: 'serial:BIG', vid: '1209', pid: '0001', serial: 'BIG', bus: 1, address: 5 };
    const fd = openSync(file, 'w');
    let seq = 0;
    const target = 600 * 1024 * 1024;
    let size = 0;
    while (size < target) {
      let chunk = '';
      for (let i = 0; i < 2000; i++) {
        seq++;
        // The key order buildEvent writes.
        const ev = { device, source: 'devfs', type: 'device.added', ts: 1767225600000, seq, session: 1 };
        chunk += `${JSON.stringify({ ev })}\n${JSON.stringify({ drop: seq - 500 })}\n`;
      }
      size += writeSync(fd, chunk);
    }
    closeSync(fd);
    const startedAt = Date.now();
    const agent = startAgent({ cli, id, tree, stateDir, mqttUrl: ctx.broker.url });
    let started = false;
    let error = '';
    try {
      await agent.waitFor((l) => /^agent .* started/.test(l.msg ?? ''), 120_000, 'start');
      started = true;
    } catch {
      error = (agent.stderr || agent.lines.map((l) => l.msg).join(' | ')).split('\n')[0].slice(0, 160);
    }
    const startS = ((Date.now() - startedAt) / 1000).toFixed(1);
    await settle(ctx.sub, id, () => 500, { quietMs: 3000, maxMs: 30_000 });
    const delivered = ctx.sub.unique(id);
    await agent.stop();
    const after = existsSync(file) ? statSync(file).size : 0;
    return print(
      'bigfile: start on a 600 MiB queue file (2.9 M lines, 500 pending)',
      {
        started: started ? `yes, in ${startS} s` : `no (${error})`,
        delivered,
        'file after': `${after} bytes`,
      },
      [
        ['starts', started],
        ['delivers the 500 pending events', delivered >= 500],
      ],
    );
  } finally {
    tree.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** kill -9 mid-storm, damage the queue file, restart: does a new event reuse a delivered seq? */
async function crashRun(ctx, kind, title) {
  const id = `qf-${kind}`;
  const stateDir = mkdtempSync(path.join(os.tmpdir(), `queue-faults-${kind}-`));
  const tree = new Tree(`queue-faults-${kind}-`);
  const file = path.join(stateDir, QUEUE_FILE);
  try {
    let agent = startAgent({ cli, id, tree, stateDir, mqttUrl: ctx.broker.url });
    await agent.waitFor((l) => /^connected to broker/.test(l.msg ?? ''), 20_000, 'connect');
    let storming = true;
    const stormed = (async () => {
      while (storming) await storm(tree, 1, 10);
    })();
    await sleep(1500);
    copyFileSync(file, `${file}.earlier`);
    await sleep(1500);
    await agent.stop('SIGKILL');
    storming = false;
    await stormed;
    const bytes = statSync(file).size;
    if (kind === 'torn') {
      // Torn in the middle of the last event line (what a crash mid-write, or a power cut before the
      // page reached the disk, leaves); everything after it is gone too.
      const text = readFileSync(file, 'utf8');
      const at = text.lastIndexOf('{"ev":');
      truncateSync(file, Buffer.byteLength(text.slice(0, at + 40)));
    } else if (kind === 'half') truncateSync(file, Math.floor(bytes / 2));
    else copyFileSync(`${file}.earlier`, file);
    const before = ctx.sub.of(id).map((e) => ({ ...e }));
    agent = startAgent({ cli, id, tree, stateDir, mqttUrl: ctx.broker.url });
    await agent.waitFor((l) => /^connected to broker/.test(l.msg ?? ''), 20_000, 'connect');
    await storm(tree, 10, 20);
    await settle(ctx.sub, id, () => Number.POSITIVE_INFINITY, { quietMs: 2500, maxMs: 15_000 });
    await agent.stop();
    const seenBefore = new Map(before.map((e) => [e.seq, e.session]));
    const bySession = new Set(before.map((e) => `${e.session}:${e.seq}`));
    const after = ctx.sub.of(id).slice(before.length);
    const sessionAfter = Math.max(...after.map((e) => e.session));
    const fresh = after.filter((e) => e.session === sessionAfter);
    const reused = fresh.filter((e) => seenBefore.has(e.seq)).length;
    const collisions = fresh.filter((e) => bySession.has(`${e.session}:${e.seq}`)).length;
    return print(
      `${kind}: kill -9 mid-storm, ${title}`,
      {
        'delivered before': before.length,
        'new events after restart': fresh.length,
        'seq reused': reused,
        '(session, seq) reused': collisions,
      },
      [
        ['no delivered seq handed out again', reused === 0],
        ['no (session, seq) handed out again', collisions === 0],
      ],
    );
  } finally {
    tree.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const broker = await startMosquitto();
const sub = await startSubscriber(broker.url);
console.log(`agent: ${path.relative(process.cwd(), cli) || cli}; storm ${CYCLES} cycles per disk fault`);
let failed = 0;
try {
  for (const [name, fn] of Object.entries(runs)) {
    if (ONLY.length > 0 && !ONLY.includes(name)) continue;
    try {
      if (!(await fn({ broker, sub }))) failed++;
    } catch (err) {
      failed++;
      console.log(`\n--- ${name}: could not run: ${err.message.split('\n')[0]}`);
    }
  }
} finally {
  await sub.close();
  await broker.stop();
}
console.log(`\n${failed === 0 ? 'all goals met' : `${failed} run(s) missed a goal`}`);
