#!/usr/bin/env node
/**
 * Benchmark for `replug watch` (issue 4). Run after `npm run build`:  node bench/watch.mjs [--n 50000]
 *
 * 1. Throughput: `replug watch --json` and `mosquitto_sub -v` subscribe to the same broker; one publisher
 *    sends N schema-valid events as fast as it can (QoS 0); each consumer's rate is messages received over
 *    the time from its first to its last bench message. Goal: replug/mosquitto_sub >= 0.5.
 * 2. Fleet lag: 1,000 simulated agents (20 connections x 50 agent ids) publish their retained census and
 *    then one event per agent per second; lag = the CLI's receivedAt (stamped just before the reducer runs)
 *    minus the payload's ts (stamped at publish). Goal: p99 < 1 s.
 * The broker is Mosquitto when installed (so the consumers, not the broker, are the bottleneck), else the
 * embedded Aedes. Figures are printed, never asserted.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const cli = path.join(root, 'dist/src/bin/replug.js');
if (!existsSync(cli)) {
  console.error('bench/watch.mjs: run `npm run build` first');
  process.exit(2);
}
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 50_000);
const AGENTS = arg('agents', 1000);
const CONNECTIONS = arg('connections', 20);
const SECONDS = arg('seconds', 5);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T = Date.now();
const device = { key: 'serial:B1', vid: '1209', pid: '0001', serial: 'B1', bus: 1, address: 4 };
const event = (seq, ts = T) =>
  JSON.stringify({
    type: 'reconnect.succeeded',
    target: '1209:0001:B1',
    attempts: 1,
    device,
    durationMs: 12,
    seq,
    session: 1,
    ts,
  });

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startBroker() {
  const bin = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto'].find(existsSync);
  if (bin) {
    const port = await freePort();
    const child = spawn(bin, ['-p', String(port)], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise((r) => {
        const c = net.connect(port, '127.0.0.1', () => {
          c.end();
          r(true);
        });
        c.on('error', () => r(false));
      });
      if (ok) break;
      await sleep(50);
    }
    return { name: 'mosquitto', url: `mqtt://127.0.0.1:${port}`, close: async () => child.kill() };
  }
  const { startBroker: aedes } = await import(path.join(root, 'dist/src/broker/broker.js'));
  const b = await aedes({ port: 0 });
  return { name: 'aedes', url: b.url, close: () => b.close() };
}

/** A consumer process whose stdout lines are counted (and optionally inspected) as they arrive. */
function consumer(name, cmd, args, onLine) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const c = { name, child, count: 0, first: 0, last: 0, ready: false };
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    if (!c.ready && chunk.includes('probe')) c.ready = true;
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    const now = performance.now();
    for (const line of parts) {
      if (!line.includes('"seq"')) continue;
      if (c.count === 0) c.first = now;
      c.count++;
      c.last = now;
      onLine?.(line);
    }
  });
  return c;
}

async function throughput(broker) {
  const replug = consumer('replug watch --json', process.execPath, [
    cli,
    'watch',
    '--json',
    '--mqtt',
    broker.url,
  ]);
  const { port } = new URL(broker.url);
  const sub = consumer('mosquitto_sub -v', 'mosquitto_sub', [
    '-h',
    '127.0.0.1',
    '-p',
    port,
    '-t',
    'replug/#',
    '-v',
  ]);
  const pub = await mqtt.connectAsync(broker.url, { clientId: 'bench-pub' });
  // Both subscribed once each has printed a probe (a status: no "seq", so not counted).
  for (let i = 0; !(replug.ready && sub.ready); i++) {
    if (i > 100) throw new Error('consumers did not subscribe');
    await pub.publishAsync('replug/probe/status', JSON.stringify({ state: 'online', session: 1, ts: T }));
    await sleep(100);
  }
  const t0 = performance.now();
  for (let seq = 1; seq <= N; seq++) {
    pub.publish(`replug/bench-${seq % 10}/event`, event(seq));
    if (seq % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  await pub.endAsync();
  const sent = performance.now() - t0;
  for (let idle = 0; idle < 30 && (replug.count < N || sub.count < N); idle++) {
    const before = replug.count + sub.count;
    await sleep(200);
    if (replug.count + sub.count > before) idle = 0;
  }
  replug.child.kill('SIGINT');
  sub.child.kill();
  const rate = (c) => (c.count > 1 ? (c.count / (c.last - c.first)) * 1000 : 0);
  console.log(`throughput (${broker.name}, ${N} events published in ${Math.round(sent)} ms, QoS 0)`);
  for (const c of [sub, replug]) {
    console.log(`  ${c.name.padEnd(22)} received ${c.count}/${N}  ${Math.round(rate(c))} msg/s`);
  }
  const ratio = rate(replug) / rate(sub);
  console.log(`  ratio replug/mosquitto_sub = ${ratio.toFixed(2)} (goal >= 0.5)`);
}

async function fleetLag(broker) {
  const lags = [];
  const agentsSeen = new Set();
  let censusDone = 0;
  const tStart = performance.now();
  const watch = consumer(
    'replug watch --json',
    process.execPath,
    [cli, 'watch', '--json', '--mqtt', broker.url],
    (line) => {
      const l = JSON.parse(line);
      if (l.kind === 'event') lags.push(l.receivedAt - l.payload.ts);
    },
  );
  watch.child.stdout.on('data', (d) => {
    for (const m of String(d).matchAll(/"agent":"(sim-\d+)","kind":"health"/g)) agentsSeen.add(m[1]);
    if (agentsSeen.size === AGENTS && !censusDone) censusDone = performance.now() - tStart;
  });
  await sleep(500);
  const perConn = Math.ceil(AGENTS / CONNECTIONS);
  const conns = await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, i) =>
      mqtt.connectAsync(broker.url, { clientId: `bench-fleet-${i}` }),
    ),
  );
  const ids = (i) =>
    Array.from({ length: perConn }, (_, k) => `sim-${i * perConn + k}`).filter(
      (_, k) => i * perConn + k < AGENTS,
    );
  const tCensus = performance.now();
  await Promise.all(
    conns.map(async (c, i) => {
      for (const id of ids(i)) {
        const now = Date.now();
        await c.publishAsync(
          `replug/${id}/status`,
          JSON.stringify({ state: 'online', session: 1, ts: now }),
          { qos: 1, retain: true },
        );
        await c.publishAsync(`replug/${id}/health`, JSON.stringify(health(now)), { qos: 1, retain: true });
      }
    }),
  );
  for (let s = 1; s <= SECONDS; s++) {
    const tick = performance.now();
    await Promise.all(
      conns.map((c, i) =>
        Promise.all(ids(i).map((id) => c.publishAsync(`replug/${id}/event`, event(s, Date.now())))),
      ),
    );
    await sleep(Math.max(0, 1000 - (performance.now() - tick)));
  }
  await sleep(1000);
  watch.child.kill('SIGINT');
  await Promise.all(conns.map((c) => c.endAsync()));
  lags.sort((a, b) => a - b);
  const p = (q) => lags[Math.min(lags.length - 1, Math.ceil((q / 100) * lags.length) - 1)];
  console.log(
    `fleet lag (${broker.name}, ${AGENTS} agents on ${CONNECTIONS} connections, 1 event/agent/s for ${SECONDS} s)`,
  );
  console.log(
    `  census of ${agentsSeen.size} agents aggregated ${Math.round(censusDone - (tCensus - tStart))} ms after publishing began`,
  );
  console.log(
    `  ${lags.length}/${AGENTS * SECONDS} events; publish->aggregated lag p50 ${p(50)} ms, p99 ${p(99)} ms, max ${lags.at(-1)} ms (goal < 1000)`,
  );
}

function health(ts) {
  return {
    uptimeS: 1,
    memory: { rssBytes: 1, heapUsedBytes: 1 },
    sources: { devfs: { seen: 1, first: 1, missed: 0, meanLatencyMs: 0, maxLatencyMs: 0 } },
    queue: { depth: 0, dropped: 0, capacity: 10 },
    broker: { connected: true, reconnects: 0 },
    session: 1,
    ts,
  };
}

const broker = await startBroker();
try {
  await throughput(broker);
  await fleetLag(broker);
} finally {
  await broker.close();
}
