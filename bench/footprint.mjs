#!/usr/bin/env node
/**
 * The agent's footprint (issue 17, goal 2). Run after `npm run build`:
 *   node bench/footprint.mjs [--cycles 10000] [--idle-s 10] [--settle-s 10] [--base-cli <other build's replug.js>]
 *
 * 1. Idle RSS with the embedded broker and no target (goal <= 64 MB), and with --mqtt to an external
 *    Mosquitto (goal <= 48 MB): the agent on a fake tree with one device, sampled every 500 ms over the
 *    idle window that starts --settle-s (10) after the first health went out; the figure is the
 *    largest sample.
 *    Each idle figure gives its file-backed and anonymous parts, and a bare node is measured first as the
 *    floor (its RSS is mostly the node binary's own pages).
 * 2. Idle CPU over the same window, utime + stime from /proc: goal <= 0.5 % of one core.
 * 3. RSS after 10,000 replug cycles within 10 % of the RSS after 100 (a target session on the fake tree,
 *    each cycle waited for: device.added then device.removed events at a subscriber), twice: sampled 1-3 s
 *    after the last cycle, and again at both points once 15 s more have passed (V8's memory reducer may
 *    run 8 s after allocation slows: what is still there then is not the storm's garbage waiting for a
 *    collection). The agent's CPU per cycle is printed beside it.
 * --base-cli measures another build in the same run, each scenario back to back (before/after).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { cpuMs, isOnline, spawnAgent, watchAgent } from './lib/agent-proc.mjs';
import { Tree } from './lib/fake-tree.mjs';
import { arg, DEVNODE_DRIVER, freePort, ROOT, sleep, startMosquitto } from './lib/procs.mjs';
import { figure, procMemory } from './lib/report.mjs';

const cli = arg('cli', path.join(ROOT, 'dist/src/bin/replug.js'));
const baseCli = arg('base-cli', undefined);
const CYCLES = arg('cycles', 10_000);
const IDLE_S = arg('idle-s', 10);
// V8's memory reducer collects the start-up's garbage with a full GC once allocation has been low for
// 8 s or more (--gc-memory-reducer-start-delay-ms): a one-off of 50-90 ms CPU that belongs to start-up.
// The idle window starts after that delay; it may still catch it (the CPU figure then says 70-90 ms), and
// --idle-s 60 shows what it is worth over a minute.
const SETTLE_S = arg('settle-s', 10);
// The second growth figure samples again after this much more quiet at both points, so that what V8 still
// holds of a storm's garbage is told apart from growth: the same wait at 100 and at the end.
const SETTLED_MS = 15_000;
// Node and environment for every agent this bench starts, to try a runtime setting on equal terms.
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean);
const AGENT_ENV = JSON.parse(arg('env', '{}'));
const ONLY = arg('only', 'all'); // idle | cycles | all

const builds = baseCli
  ? [
      ['this build', cli],
      ['base build', baseCli],
    ]
  : [['this build', cli]];

// One agent id per run: Mosquitto keeps the previous run's retained topics, never to be taken for this one's.
let runs = 0;

/** Starts an agent, waits for online and a health, then samples RSS and CPU over the idle window. */
async function idle(label, bin, { external }) {
  const tree = new Tree('replug-bench-fp-');
  tree.plug('IDLE1');
  const id = `fp-${external ? 'ext' : 'emb'}-${process.pid}-${++runs}`;
  const port = external ? external.port : await freePort();
  const url = external ? external.url : `mqtt://127.0.0.1:${port}`;
  const args = ['--id', id, '--sysfs-root', tree.sys, '--devfs-root', tree.dev];
  args.push(...(external ? ['--mqtt', url] : ['--broker-port', String(port)]));
  const agent = spawnAgent(bin, args, { nodeArgs: NODE_ARGS, env: AGENT_ENV });
  const sub = await watchAgent(url, id);
  try {
    await sub.waitFor(isOnline, 'retained online');
    await sub.waitFor((k) => k === 'health', 'health');
    await sleep(SETTLE_S * 1000); // the start-up's garbage is the start-up's (SETTLE_S above)
    const pid = agent.child.pid;
    const cpu0 = cpuMs(pid);
    const w0 = performance.now();
    const samples = [];
    let largest = procMemory(pid);
    while (performance.now() - w0 < IDLE_S * 1000) {
      const m = procMemory(pid);
      if (!(m.rssMb <= largest.rssMb)) largest = m;
      samples.push(m.rssMb);
      await sleep(500);
    }
    const cpuPct = ((cpuMs(pid) - cpu0) / (performance.now() - w0)) * 100;
    const what = external ? '--mqtt to Mosquitto' : 'embedded broker';
    const split = `at the largest: file-backed ${largest.fileMb.toFixed(1)} MB, anonymous ${largest.anonMb.toFixed(1)} MB`;
    const counts = `${samples.length} samples over ${IDLE_S} s from ${SETTLE_S} s after the first health, min ${Math.round(Math.min(...samples))} MB, ${split}; ${label}`;
    figure(`idle RSS, ${what}`, Math.max(...samples), 'MB', { max: external ? 48 : 64 }, counts);
    figure(
      `idle CPU, ${what}`,
      cpuPct,
      '% of a core',
      { max: 0.5 },
      `${Math.round(cpuMs(pid) - cpu0)} ms CPU in ${IDLE_S} s; ${label}`,
    );
  } finally {
    await sub.close();
    await agent.stop();
    tree.cleanup();
  }
}

/** RSS after 100 cycles and after CYCLES, each the median of 5 samples over 2 s of quiet. */
async function cycles(label, bin, broker) {
  const tree = new Tree('replug-bench-cyc-');
  const id = `fp-cycles-${process.pid}-${++runs}`;
  const args = ['--id', id, '--sysfs-root', tree.sys, '--devfs-root', tree.dev, '--mqtt', broker.url];
  args.push('--target', '1209:0001', '--driver', DEVNODE_DRIVER, '--settle', '200');
  const agent = spawnAgent(bin, args, { nodeArgs: NODE_ARGS, env: AGENT_ENV });
  const sub = await watchAgent(broker.url, id, { deadlineMs: 10_000 });
  // The median of 5 samples over 2 s of quiet, with its file-backed and anonymous parts.
  const quiet = async (quietMs = 1000) => {
    await sleep(quietMs);
    const s = [];
    for (let i = 0; i < 5; i++, await sleep(400)) s.push(procMemory(agent.child.pid));
    return s.sort((a, b) => a.rssMb - b.rssMb)[2];
  };
  const split = (m) => `file-backed ${m.fileMb.toFixed(1)} + anonymous ${m.anonMb.toFixed(1)}`;
  let done = 0;
  try {
    await sub.waitFor(isOnline, 'retained online');
    const seen = (type, address) => (k, j) =>
      k === 'event' && j?.type === type && j?.device?.address === address;
    let at100;
    let settled100;
    let cpu100 = Number.NaN;
    const t0 = performance.now();
    for (; done < CYCLES; done++) {
      const address = tree.plug(`C${done % 7}`);
      await sub.waitFor(seen('device.added', address), `device.added ${address}`);
      tree.unplug();
      await sub.waitFor(seen('device.removed', address), `device.removed ${address}`);
      // The subscriber keeps what it needs only: a long run must not measure the bench.
      sub.messages.length = 0;
      if (done + 1 === 100) {
        at100 = await quiet();
        settled100 = await quiet(SETTLED_MS);
        cpu100 = cpuMs(agent.child.pid);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const perCycle = (cpuMs(agent.child.pid) - cpu100) / (done - 100);
    const atEnd = await quiet();
    const settledEnd = await quiet(SETTLED_MS);
    const growth = ((atEnd.rssMb - at100.rssMb) / at100.rssMb) * 100;
    figure(
      `RSS growth, 100 -> ${CYCLES} replug cycles`,
      growth,
      '%',
      { max: 10 },
      `${at100.rssMb.toFixed(1)} MB (${split(at100)}) after 100, ${atEnd.rssMb.toFixed(1)} MB (${split(atEnd)}) after ${done}, each 1-3 s after the last cycle; ${Math.round(done / seconds)} cycles/s, agent CPU ${perCycle.toFixed(1)} ms per cycle; ${label}`,
    );
    figure(
      `RSS growth, 100 -> ${CYCLES} replug cycles, settled`,
      ((settledEnd.rssMb - settled100.rssMb) / settled100.rssMb) * 100,
      '%',
      { max: 10 },
      `${settled100.rssMb.toFixed(1)} MB (${split(settled100)}) after 100, ${settledEnd.rssMb.toFixed(1)} MB (${split(settledEnd)}) after ${done}, each once ${SETTLED_MS / 1000} s more had passed, past V8's memory reducer delay (8 s); ${label}`,
    );
  } catch (err) {
    figure(
      `RSS growth, 100 -> ${CYCLES} replug cycles`,
      Number.NaN,
      '%',
      { max: 10 },
      `stopped after ${done} cycles: ${err.message}; ${label}`,
    );
  } finally {
    await sub.close();
    await agent.stop();
    tree.cleanup();
  }
}

/**
 * The floor under every idle figure: this node with an empty event loop, sampled as the agent is. Its
 * file-backed part is the node binary's pages that any script touches.
 */
async function bareNode() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await sleep(3000);
    const samples = [];
    for (let i = 0; i < 6; i++, await sleep(500)) samples.push(procMemory(child.pid));
    const largest = samples.reduce((a, b) => (b.rssMb > a.rssMb ? b : a));
    figure(
      'idle RSS, bare node (reference, no goal)',
      largest.rssMb,
      'MB',
      undefined,
      `${samples.length} samples, at the largest: file-backed ${largest.fileMb.toFixed(1)} MB, anonymous ${largest.anonMb.toFixed(1)} MB; ${process.version}`,
    );
  } finally {
    child.kill();
  }
}

const mosquitto = await startMosquitto();
try {
  if (ONLY !== 'cycles') {
    await bareNode();
    for (const [label, bin] of builds) await idle(label, bin, { external: undefined });
    for (const [label, bin] of builds) await idle(label, bin, { external: mosquitto });
  }
  if (ONLY !== 'idle') for (const [label, bin] of builds) await cycles(label, bin, mosquitto);
} finally {
  await mosquitto.stop();
}
