#!/usr/bin/env node
/**
 * Benchmark (issue 12): the agent's event-loop delay during a replug storm, and how much of it the durable
 * queue's disk work causes. Run after `npm run build`:
 *   node bench/eventloop.mjs [--cycles 1000] [--gap 5] [--cli path/to/replug.js]
 *
 * The real `replug agent` CLI on a fake USB tree (target 1209:0001, the devnode driver), publishing to
 * Mosquitto, with its --state-dir on the machine's real disk (not tmpfs: fsync must cost what it costs).
 * bench/lib/eventloop-probe.mjs is preloaded into the agent: it records perf_hooks.monitorEventLoopDelay
 * over the storm only, and counts the synchronous fs calls that wait for the device. Each cycle plugs the
 * target, waits `gap` ms, unplugs it, waits `gap` ms. Figures are printed with the counts beside them and
 * the goals, never asserted. Goals: no fsync or fdatasync on the event loop; p99 <= 20 ms.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tree } from './lib/fake-tree.mjs';
import { arg, DEVNODE_DRIVER, ROOT, sleep, startMosquitto, startSubscriber } from './lib/procs.mjs';

const cli = path.resolve(arg('cli', path.join(ROOT, 'dist/src/bin/replug.js')));
if (!existsSync(cli)) {
  console.error(`bench/eventloop.mjs: ${cli} missing; run \`npm run build\` first`);
  process.exit(2);
}
const CYCLES = arg('cycles', 1000);
const GAP = arg('gap', 5);
const GOAL_P99_MS = 20;
const probe = path.join(ROOT, 'bench/lib/eventloop-probe.mjs');

const broker = await startMosquitto();
const sub = await startSubscriber(broker.url);
const tree = new Tree('replug-bench-eventloop-');
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-eventloop-state-'));
const id = 'bench-eventloop';
const agent = fork(
  cli,
  ['agent', '--log-format', 'json', '--log-level', 'warn', '--id', id, '--sysfs-root', tree.sys]
    .concat(['--devfs-root', tree.dev, '--state-dir', stateDir, '--mqtt', broker.url])
    .concat(['--target', '1209:0001', '--driver', DEVNODE_DRIVER]),
  { execArgv: ['--import', probe], env: { PATH: process.env.PATH, HOME: stateDir }, stdio: 'pipe' },
);
let stderr = '';
agent.stderr.setEncoding('utf8').on('data', (d) => {
  stderr += d;
});
agent.stdout.resume();
const ask = (msg) =>
  new Promise((resolve) => {
    agent.once('message', resolve);
    agent.send(msg);
  });

try {
  const deadline = Date.now() + 30_000;
  while (!sub.health.has(id)) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`agent did not come up: ${stderr}`);
    await sleep(50);
  }
  await sleep(500);
  const before = sub.unique(id);
  agent.send('start');
  const t0 = Date.now();
  for (let i = 0; i < CYCLES; i++) {
    tree.plug();
    await sleep(GAP);
    tree.unplug();
    await sleep(GAP);
  }
  const stormS = (Date.now() - t0) / 1000;
  // Until delivery settles: the PUBACK path (acks, compactions) is part of what is measured.
  let last = -1;
  for (let quiet = 0; quiet < 15; ) {
    await sleep(100);
    const n = sub.unique(id);
    quiet = n === last ? quiet + 1 : 0;
    last = n;
  }
  const figures = await ask('stop');
  const delivered = sub.unique(id) - before;
  const syncFs = figures.sync.fsyncSync.calls + figures.sync.fdatasyncSync.calls;
  const syncMs = figures.sync.fsyncSync.ms + figures.sync.fdatasyncSync.ms;
  const syncMax = Math.max(figures.sync.fsyncSync.maxMs, figures.sync.fdatasyncSync.maxMs);
  console.log(`agent: ${path.relative(process.cwd(), cli) || cli}`);
  console.log(`storm: ${CYCLES} plug/unplug cycles in ${stormS.toFixed(1)} s, ${delivered} events delivered`);
  console.log(
    `event-loop delay: p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms, max ${figures.maxMs.toFixed(2)} ms (${figures.samples} samples at 1 ms resolution)`,
  );
  console.log(
    `on the event loop: ${figures.sync.fdatasyncSync.calls} fdatasyncSync + ${figures.sync.fsyncSync.calls} fsyncSync (${syncMs.toFixed(1)} ms, longest ${syncMax.toFixed(1)} ms), ${figures.sync.renameSync.calls} renameSync (${figures.sync.renameSync.ms.toFixed(1)} ms), ${figures.sync.writeSync.calls} writeSync (${figures.sync.writeSync.ms.toFixed(1)} ms, longest ${figures.sync.writeSync.maxMs.toFixed(1)} ms)`,
  );
  console.log(`goal: no fsync/fdatasync on the event loop    ${syncFs === 0 ? 'PASS' : 'FAIL'} (${syncFs})`);
  console.log(
    `goal: p99 <= ${GOAL_P99_MS} ms                          ${figures.p99Ms <= GOAL_P99_MS ? 'PASS' : 'FAIL'} (${figures.p99Ms.toFixed(2)} ms)`,
  );
} finally {
  agent.kill('SIGTERM');
  await Promise.race([new Promise((r) => agent.once('exit', r)), sleep(10_000)]);
  agent.kill('SIGKILL');
  await sub.close();
  await broker.stop();
  tree.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
}
