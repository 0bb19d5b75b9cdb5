/**
 * Processes the queue benchmarks drive: Mosquitto, the real `replug agent` CLI (JSON log read back line by
 * line), a recording subscriber, and a TCP proxy that can cut the agent off its broker (an outage the
 * broker itself does not see, so subscribers stay connected).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

export const ROOT = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))));
export const DEVNODE_DRIVER = path.join(ROOT, 'examples/drivers/devnode.mjs');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  return typeof dflt === 'number' ? Number(v) : v;
}

export function findExecutable(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitListening(port, deadlineMs = 10_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await sleep(25);
  }
}

export async function startMosquitto({ maxQueued = 100_000 } = {}) {
  const binary = findExecutable('mosquitto');
  if (!binary) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-mosquitto-'));
  const port = await freePort();
  const conf = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false'];
  conf.push(`user ${os.userInfo().username}`, 'log_dest none', `max_queued_messages ${maxQueued}`);
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${conf.join('\n')}\n`);
  const child = spawn(binary, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  await waitListening(port);
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy to `targetPort`; cut() drops every connection and refuses new ones until restore(). */
export async function startProxy(targetPort) {
  const port = await freePort();
  const sockets = new Set();
  let server;
  const listen = () =>
    new Promise((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        sockets.add(client).add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', resolve);
    });
  await listen();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async cut() {
      await new Promise((r) => {
        server.close(r);
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
    },
    restore: listen,
    stop() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * `replug agent` as a child process with a JSON log. `lines` holds every parsed log line; `events` counts
 * the lines that log one agent event (every event is logged at debug level with an `event` field), which
 * is how many events the agent produced.
 */
export function startAgent({ cli, id, tree, stateDir, mqttUrl, extra = [], uid, env = {} }) {
  const args = [cli, 'agent', '--log-format', 'json', '--log-level', 'debug', '--id', id];
  args.push('--sysfs-root', tree.sys, '--devfs-root', tree.dev, '--state-dir', stateDir);
  args.push('--mqtt', mqttUrl, '--target', '1209:0001', '--driver', DEVNODE_DRIVER, ...extra);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: stateDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
  const agent = {
    child,
    lines: [],
    stderr: '',
    produced: 0,
    exited: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))),
    waitFor(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      return (async () => {
        for (;;) {
          const hit = agent.lines.find(predicate);
          if (hit) return hit;
          if (Date.now() > deadline)
            throw new Error(`agent ${id}: no ${what} within ${timeoutMs} ms\n${agent.stderr.slice(-2000)}`);
          await sleep(20);
        }
      })();
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return agent.exited;
      child.kill(signal);
      const res = await Promise.race([agent.exited, sleep(15_000).then(() => undefined)]);
      if (!res) child.kill('SIGKILL');
      return agent.exited;
    },
  };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const raw of parts) {
      try {
        const line = JSON.parse(raw);
        agent.lines.push(line);
        if (isEventLog(line)) agent.produced++;
      } catch {
        agent.lines.push({ level: 60, msg: raw });
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    agent.stderr += d;
  });
  return agent;
}

/** A log line that reports one agent event (not the agent's complaint that it could not queue one). */
export function isEventLog(line) {
  return typeof line.event === 'string' && line.msg !== 'could not queue event';
}

/** Records every event (unique by session and seq, and by seq alone) and the last health of each agent. */
export async function startSubscriber(url) {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 200, clean: true });
  const sub = {
    client,
    events: [],
    health: new Map(),
    unique(agent) {
      const seen = new Set();
      for (const e of sub.events) if (e.agent === agent) seen.add(`${e.session}:${e.seq}`);
      return seen.size;
    },
    of(agent) {
      return sub.events.filter((e) => e.agent === agent);
    },
    close: () => client.endAsync(true),
  };
  client.on('message', (topic, payload) => {
    const [, agent, kind] = topic.split('/');
    if (payload.length === 0) return;
    let json;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (kind === 'event') sub.events.push({ agent, seq: json.seq, session: json.session, at: Date.now() });
    else if (kind === 'health') sub.health.set(agent, json);
  });
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  await client.subscribeAsync(['replug/+/event', 'replug/+/health'], { qos: 1 });
  return sub;
}
