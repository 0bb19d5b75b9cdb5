/**
 * `replug agent` as a bare child process for the footprint, start-up and scale benchmarks: no log
 * parsing on the hot path (stdout is drained, not read), its CPU time and memory from /proc, and an MQTT
 * subscriber that says when the agent's retained topics arrive.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { sleep } from './procs.mjs';
import { procMemory } from './report.mjs';

/** utime + stime of a process in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 100 Hz). */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Current RSS in MB (report.mjs's procMemory has the rest). */
export function rssMb(pid) {
  return procMemory(pid).rssMb;
}

/**
 * Spawns `node <cli> agent ...args` with a fresh state dir. `t0` is stamped just before spawn (the exec
 * the start-up figure counts from).
 */
export function spawnAgent(cli, args, { nodeArgs = [], env = {}, logLevel = 'warn', onLine } = {}) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-state-'));
  const all = [...nodeArgs, cli, 'agent', '--state-dir', stateDir, '--log-level', logLevel, ...args];
  if (onLine) all.push('--log-format', 'json');
  const t0 = performance.now();
  const wall0 = Date.now();
  const child = spawn(process.execPath, all, {
    env: { PATH: process.env.PATH, HOME: stateDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  if (onLine) {
    let rest = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) onLine(line);
    });
  } else child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    t0,
    wall0,
    stateDir,
    exited,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const res = await Promise.race([exited, sleep(10_000).then(() => undefined)]);
        if (!res) child.kill('SIGKILL');
        await exited;
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Subscribes to `replug/<id>/#` on `url` (retrying until the broker listens: the embedded one comes up
 * with the agent) and records when each topic first arrived (performance.now()) and every message.
 */
export async function watchAgent(url, id, { deadlineMs = 20_000 } = {}) {
  const first = new Map();
  const messages = [];
  const waiters = [];
  const client = mqtt.connect(url, { reconnectPeriod: 5, connectTimeout: 2000, protocolVersion: 5 });
  client.on('error', () => {});
  client.on('connect', () => client.subscribe(`replug/${id}/#`, { qos: 1 }));
  client.on('message', (topic, payload) => {
    const at = performance.now();
    const kind = topic.split('/').slice(2).join('/');
    let json;
    try {
      json = payload.length > 0 ? JSON.parse(payload.toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    messages.push({ kind, json, at });
    if (!first.has(kind)) first.set(kind, at);
    for (const w of [...waiters]) if (w.test(kind, json, at)) w.resolve(at);
  });
  return {
    client,
    first,
    messages,
    /** Resolves with the arrival time of the first message (from now on, or already here) that passes. */
    waitFor(test, what, ms = deadlineMs) {
      const hit = messages.find((m) => test(m.kind, m.json, m.at));
      if (hit) return Promise.resolve(hit.at);
      return new Promise((resolve, reject) => {
        const w = {
          test,
          resolve: (at) => {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(w), 1);
            resolve(at);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no ${what} within ${ms} ms`));
        }, ms);
        waiters.push(w);
      });
    },
    close: () => client.endAsync(true),
  };
}

export const isOnline = (kind, json) => kind === 'status' && json?.state === 'online';
