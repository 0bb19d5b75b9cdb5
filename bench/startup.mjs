#!/usr/bin/env node
/**
 * Start-up (issue 17, goal 5): `replug agent` from exec to its retained `online` at a subscriber, with
 * the embedded broker and with --mqtt to Mosquitto. Goal: p50 <= 250 ms (embedded). Run after
 * `npm run build`:  node bench/startup.mjs [--runs 7] [--base-cli <other build's replug.js>]
 *
 * Beside the wall-clock figure, the agent's own CPU time up to online (p50): on a machine other processes
 * load, the wall clock stretches and the CPU time shows whether start-up itself got cheaper.
 *
 * Where the time goes: the agent's own log lines (JSON, info level) carry their wall-clock `time`; each
 * stage is printed as ms after exec (p50 over the runs), so the slow stage is named. Builds alternate run
 * by run, so load from other processes falls on both alike.
 */
import path from 'node:path';
import { cpuMs, isOnline, spawnAgent, watchAgent } from './lib/agent-proc.mjs';
import { Tree } from './lib/fake-tree.mjs';
import { arg, freePort, ROOT, startMosquitto } from './lib/procs.mjs';
import { figure, percentile } from './lib/report.mjs';

const cli = arg('cli', path.join(ROOT, 'dist/src/bin/replug.js'));
const baseCli = arg('base-cli', undefined);
const RUNS = arg('runs', 7);
const builds = baseCli
  ? [
      ['this build', cli],
      ['base build', baseCli],
    ]
  : [['this build', cli]];

// One agent id per run: Mosquitto keeps the previous run's retained topics, never to be taken for this one's.
let runs = 0;

/** Log messages that mark a stage, by a prefix of `msg`. */
const STAGES = [
  ['runtime report', 'runtime:'],
  ['embedded broker listening', 'see what the agent publishes'],
  ['agent started', 'agent '],
];

async function once(bin, external) {
  const tree = new Tree('replug-bench-start-');
  tree.plug('START1');
  const id = `start-${external ? 'ext' : 'emb'}-${process.pid}-${++runs}`;
  const port = external ? external.port : await freePort();
  const url = external ? external.url : `mqtt://127.0.0.1:${port}`;
  const args = ['--id', id, '--sysfs-root', tree.sys, '--devfs-root', tree.dev];
  args.push(...(external ? ['--mqtt', url] : ['--broker-port', String(port)]));
  const marks = {};
  let agent;
  const onLine = (line) => {
    try {
      const l = JSON.parse(line);
      for (const [name, prefix] of STAGES)
        if (marks[name] === undefined && typeof l.msg === 'string' && l.msg.startsWith(prefix))
          marks[name] = l.time - agent.wall0;
    } catch {
      // not a log line
    }
  };
  // The subscriber retries every 5 ms, so with the embedded broker it is in as soon as the port listens.
  const sub = external ? await watchAgent(url, id) : undefined;
  agent = spawnAgent(bin, args, { logLevel: 'info', onLine });
  const s = sub ?? (await watchAgent(url, id));
  try {
    const at = await s.waitFor(isOnline, 'retained online', 15_000);
    // The agent's own CPU time (utime + stime) up to online: what start-up costs, whatever else the
    // machine runs (a loaded machine stretches the wall-clock figure, not this one).
    return { ms: at - agent.t0, cpu: cpuMs(agent.child.pid), marks };
  } finally {
    await s.close();
    await agent.stop();
    tree.cleanup();
  }
}

const mosquitto = await startMosquitto();
try {
  for (const external of [undefined, mosquitto]) {
    const results = new Map(builds.map(([label]) => [label, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const [label, bin] of builds) results.get(label).push(await once(bin, external));
    }
    const what = external ? '--mqtt to Mosquitto' : 'embedded broker';
    for (const [label, runs] of results) {
      const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
      const cpu = runs.map((r) => r.cpu).sort((a, b) => a - b);
      const stages = STAGES.map(([name]) => {
        const v = runs.map((r) => r.marks[name]).filter((x) => x !== undefined);
        return v.length
          ? `${name} ${Math.round(
              percentile(
                v.sort((a, b) => a - b),
                50,
              ),
            )}`
          : undefined;
      }).filter(Boolean);
      figure(
        `exec -> retained online p50, ${what}`,
        percentile(ms, 50),
        'ms',
        external ? undefined : { max: 250 },
        `${ms.length} runs, min ${Math.round(ms[0])}, max ${Math.round(ms.at(-1))}; agent CPU to online p50 ${Math.round(percentile(cpu, 50))} ms (min ${Math.round(cpu[0])}); stages p50 (ms after exec): ${stages.join(', ')}; ${label}`,
      );
    }
  }
} finally {
  await mosquitto.stop();
}
