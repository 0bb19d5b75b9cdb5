#!/usr/bin/env node
/**
 * Liveness check for the replug container (Docker HEALTHCHECK, Kubernetes exec probe). Exit 0 = healthy.
 *
 * Not `replug doctor`: the doctor explains the environment and would report the same verdict forever; this
 * answers "is the replug process still doing its job?" quickly and without loading the app:
 *   1. a replug process runs (PID 1 in a container; else the first one found; REPLUG_HEALTH_PID pins it)
 *      and is not a zombie or stopped;
 *   2. if it keeps a heartbeat file <state-dir>/health.json, the file was written recently;
 *   3. if it serves MQTT (`replug broker`, or `replug agent` with its embedded broker, i.e. no --mqtt URL),
 *      its port accepts a TCP connection.
 * Settings are read from the replug process's own arguments and environment, so the probe agrees with it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join } from 'node:path';

const maxAgeMs = Number(process.env.REPLUG_HEALTH_MAX_AGE_MS ?? 120_000);

function readArgs(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** argv of a replug process: node <…/replug | …/replug.js> <command> … ; returns the args after the script. */
function replugArgs(argv) {
  const i = argv.findIndex((a) => /^replug(\.js)?$/.test(basename(a)));
  return i >= 0 ? argv.slice(i + 1) : undefined;
}

function findProcess() {
  const pinned = process.env.REPLUG_HEALTH_PID;
  const pids = pinned ? [pinned] : ['1', ...readdirSync('/proc').filter((p) => /^\d+$/.test(p) && p !== '1')];
  for (const pid of pids) {
    if (pid === String(process.pid)) continue;
    const argv = readArgs(pid);
    const args = argv && replugArgs(argv);
    if (args) return { pid, args };
  }
  return undefined;
}

function processEnv(pid) {
  try {
    const pairs = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    return Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  } catch {
    return process.env; // not readable (other user): in a container both share the image's environment
  }
}

function flag(args, name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

function tcpOpen(host, port, timeoutMs = 3000) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function check() {
  const proc = findProcess();
  if (!proc) return 'no replug process found';
  const state = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]?.[0];
  if (state === 'Z' || state === 'T') return `replug (pid ${proc.pid}) is ${state === 'Z' ? 'a zombie' : 'stopped'}`;

  const env = processEnv(proc.pid);
  const command = proc.args.find((a) => !a.startsWith('-')) ?? 'agent';
  const stateDir = flag(proc.args, '--state-dir') ?? env.REPLUG_STATE_DIR;
  if (stateDir) {
    try {
      const age = Date.now() - statSync(join(stateDir, 'health.json')).mtimeMs;
      if (age > maxAgeMs) return `heartbeat ${join(stateDir, 'health.json')} is ${Math.round(age / 1000)} s old`;
    } catch {
      // no heartbeat file: this agent does not write one; rely on the other checks
    }
  }

  let host;
  let port;
  if (command === 'broker') {
    host = flag(proc.args, '--host') ?? '127.0.0.1';
    port = flag(proc.args, '--port') ?? '1883';
  } else if (command === 'agent' && !flag(proc.args, '--mqtt') && !env.REPLUG_MQTT_URL) {
    host = flag(proc.args, '--broker-host') ?? env.REPLUG_BROKER_HOST ?? '127.0.0.1';
    port = flag(proc.args, '--broker-port') ?? env.REPLUG_BROKER_PORT ?? '1883';
  }
  if (port) {
    if (host === '0.0.0.0' || host === '::' || host === '') host = '127.0.0.1';
    if (!(await tcpOpen(host, Number(port)))) return `replug ${command}: broker port ${host}:${port} refuses connections`;
  }
  return undefined;
}

const problem = await check().catch((err) => `health check failed: ${err.message}`);
if (problem) {
  console.error(`unhealthy: ${problem}`);
  process.exitCode = 1;
} else {
  console.log('healthy');
}
