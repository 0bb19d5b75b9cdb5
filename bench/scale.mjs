#!/usr/bin/env node
/**
 * Scale (issue 17, goal 4). Run after `npm run build`:
 *   node bench/scale.mjs [--counts 100,300,1000] [--targets 100] [--plugs 15] [--rounds 2] [--base-cli <replug.js>]
 *
 * 1. N devices present at start, behind hubs (bench/lib/fake-tree.mjs hubTree): time from exec to the
 *    first `devices` publish that lists all of them (goal at 1,000: <= 3000 ms), and `replug list --json`
 *    time on the same tree (goal at 1,000: <= 2000 ms); printed for each N with the growth per device.
 * 2. 100 targets at once (one serial each): every session up (counted at target/+/state), then one device
 *    unplugged and plugged back `--plugs` times: plug -> its target `up` latency p50, against the same with
 *    a single target. Goal: within 20 % of the single-target p50. `--rounds` alternates the two setups and
 *    pools their plugs, so a change of load on a shared host does not land on one setup only. The agent's
 *    CPU time at the first complete devices publish is printed beside the wall time for the same reason.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { cpuMs, spawnAgent, watchAgent } from './lib/agent-proc.mjs';
import { hubTree, replugAt, unplugAt } from './lib/fake-tree.mjs';
import { arg, DEVNODE_DRIVER, ROOT, sleep, startMosquitto } from './lib/procs.mjs';
import { check, figure, percentile } from './lib/report.mjs';

const cli = arg('cli', path.join(ROOT, 'dist/src/bin/replug.js'));
const baseCli = arg('base-cli', undefined);
const COUNTS = String(arg('counts', '100,300,1000')).split(',').map(Number);
const TARGETS = arg('targets', 100);
const PLUGS = arg('plugs', 15);
const ROUNDS = arg('rounds', 2);
const builds = baseCli
  ? [
      ['this build', cli],
      ['base build', baseCli],
    ]
  : [['this build', cli]];
const run = promisify(execFile);
// One id per run: Mosquitto keeps the retained devices and target states of the previous run's agent,
// and a figure must never be that leftover (it once made a 1,000-device start look like 51 ms).
let runs = 0;
const freshId = (what) => `${what}-${process.pid}-${++runs}`;

async function firstDevices(bin, broker, count) {
  const { tree, entries } = hubTree(count);
  const id = freshId(`scale-${count}`);
  const sub = await watchAgent(broker.url, id, { deadlineMs: 60_000 });
  const agent = spawnAgent(bin, [
    '--id',
    id,
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
    '--mqtt',
    broker.url,
  ]);
  try {
    const at = await sub.waitFor(
      (k, j) => k === 'devices' && j?.devices?.length === entries,
      `devices x${entries}`,
    );
    // The agent's CPU by then: on a shared host the wall time follows the load, the CPU time much less.
    const cpu = cpuMs(agent.child.pid);
    const publishes = sub.messages.filter((m) => m.kind === 'devices').length;
    const t = performance.now();
    const { stdout } = await run(
      process.execPath,
      [bin, 'list', '--json', '--sysfs-root', tree.sys, '--devfs-root', tree.dev],
      {
        maxBuffer: 64 << 20,
      },
    );
    const listMs = performance.now() - t;
    const listed = JSON.parse(stdout).length;
    return { devicesMs: at - agent.t0, cpu, publishes, entries, listMs, listed };
  } finally {
    await sub.close();
    await agent.stop();
    tree.cleanup();
  }
}

async function targets(bin, broker, n) {
  const { tree, devices } = hubTree(Math.max(n, 1));
  const id = freshId(`targets-${n}`);
  const args = ['--id', id, '--sysfs-root', tree.sys, '--devfs-root', tree.dev, '--mqtt', broker.url];
  args.push('--driver', DEVNODE_DRIVER, '--settle', '200');
  for (const d of devices.slice(0, n)) args.push('--target', `1209:0001:${d.serial}`);
  const sub = await watchAgent(broker.url, id, { deadlineMs: 30_000 });
  const agent = spawnAgent(bin, args);
  const up = new Set();
  const isUp = (k, j) => k.startsWith('target/') && j?.state === 'up';
  try {
    const deadline = Date.now() + 60_000;
    while (up.size < n && Date.now() < deadline) {
      for (const m of sub.messages) if (isUp(m.kind, m.json)) up.add(m.kind);
      await sleep(50);
    }
    const lat = [];
    const d = devices[0];
    let address = 100;
    for (let i = 0; i < PLUGS && up.size === n; i++) {
      unplugAt(tree, d);
      const key = (k) => k === `target/1209-0001-${d.serial.toLowerCase()}/state`;
      await sub.waitFor((k, j) => key(k) && (j?.state === 'waiting' || j?.state === 'down'), 'target down');
      sub.messages.length = 0;
      await sleep(100);
      const t = performance.now();
      replugAt(tree, d, address++);
      lat.push(
        (await sub.waitFor((k, j, at) => at > t && key(k) && j?.state === 'up', 'target up again')) - t,
      );
    }
    return { up: up.size, lat: lat.sort((a, b) => a - b) };
  } finally {
    await sub.close();
    await agent.stop();
    tree.cleanup();
  }
}

const broker = await startMosquitto();
try {
  for (const [label, bin] of builds) {
    console.log(`devices at start (${label})`);
    let prev;
    for (const count of COUNTS) {
      const r = await firstDevices(bin, broker, count);
      const last = count === COUNTS.at(-1);
      const per = prev
        ? ` (+${((r.devicesMs - prev.devicesMs) / (count - prev.count)).toFixed(2)} ms per device over ${prev.count})`
        : '';
      const counts = `${r.entries} entries (devices + hubs) in the publish, ${r.publishes} devices publishes, agent CPU ${Math.round(r.cpu)} ms by then; ${label}`;
      figure(
        `exec -> first complete devices publish, ${count} devices`,
        r.devicesMs,
        'ms',
        last ? { max: 3000 } : undefined,
        counts + per,
      );
      check(`replug list lists all, ${count} devices`, r.listed === r.entries, `${r.listed}/${r.entries}`);
      figure(
        `replug list --json, ${count} devices`,
        r.listMs,
        'ms',
        last ? { max: 2000 } : undefined,
        `${r.listed} listed; ${label}`,
      );
      prev = { ...r, count };
    }
    console.log(`targets (${label}, ${ROUNDS} rounds of 1 then ${TARGETS} targets, plugs pooled)`);
    // Alternated, not one after the other: on a shared host the load moves by the minute, and one run
    // of each once put the same build at 7 % and at 380 % slower.
    const one = { up: 0, lat: [] };
    const many = { up: Number.POSITIVE_INFINITY, lat: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const a = await targets(bin, broker, 1);
      const b = await targets(bin, broker, TARGETS);
      one.lat.push(...a.lat);
      many.lat.push(...b.lat);
      many.up = Math.min(many.up, b.up);
    }
    one.lat.sort((x, y) => x - y);
    many.lat.sort((x, y) => x - y);
    check(
      `every session up, ${TARGETS} targets`,
      many.up === TARGETS,
      `${many.up}/${TARGETS} up in every round; ${label}`,
    );
    const p1 = percentile(one.lat, 50);
    const pn = percentile(many.lat, 50);
    figure('plug -> up p50, 1 target', p1, 'ms', undefined, `${one.lat.length} plugs; ${label}`);
    figure(
      `plug -> up p50, ${TARGETS} targets, vs 1 target`,
      ((pn - p1) / p1) * 100,
      '% slower',
      { max: 20 },
      `${Math.round(pn)} vs ${Math.round(p1)} ms (${((pn - p1) / (TARGETS - 1)).toFixed(2)} ms per extra target), ${many.lat.length} and ${one.lat.length} plugs; ${label}`,
    );
  }
} finally {
  await broker.stop();
}
