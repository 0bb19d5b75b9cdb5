#!/usr/bin/env node
/**
 * Delivery through replug's broker (issue 10): what wildcard and persistent subscribers get when an
 * agent-like publisher sends QoS 1 events (seq 1..N, pipelined like the agent's pump) with a retained
 * `devices` update after every 10th event. Subscribers are Debian's mosquitto_sub, as in the issue:
 * `replug/#` clean, `replug/#` persistent (`-c -q 1`), and the exact `devices` topic.
 * Run after `npm run build`:  node bench/delivery.mjs [--events 2021] [--bare]
 *   --bare: a bare aedes with aedes-persistence-level (no replug fixes), to show the upstream fault.
 * Figures are printed, never asserted. Goal: 0 late, 0 lost, every devices update on every subscriber.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(root, 'dist/src/broker');
if (!existsSync(path.join(dist, 'broker.js'))) {
  console.error('bench/delivery.mjs: run `npm run build` first');
  process.exit(2);
}
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const EVENTS = arg('events', 2021);
const BARE = process.argv.includes('--bare');
const INFLIGHT = 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-delivery-'));
let url;
let close;
if (BARE) {
  const { Aedes } = await import('aedes');
  const { openPersistence } = await import(path.join(dist, 'persistence.js'));
  const store = await openPersistence(dir);
  const aedes = await Aedes.createBroker({ persistence: store.persistence });
  const server = net.createServer((s) => aedes.handle(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `mqtt://127.0.0.1:${server.address().port}`;
  close = async () => {
    await new Promise((r) => aedes.close(r));
    server.close();
    await store.close();
  };
} else {
  const { startBroker } = await import(path.join(dist, 'broker.js'));
  const broker = await startBroker({ port: 0, persistenceDir: dir });
  url = broker.url;
  close = () => broker.close();
}
const port = new URL(url).port;

function mosquittoSub(name, args) {
  const child = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', '311', '-v', ...args]);
  const lines = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    lines.push(...parts);
  });
  return { name, child, lines };
}
const subs = [
  mosquittoSub('replug/# clean', ['-t', 'replug/#']),
  mosquittoSub('replug/# persistent -c -q 1', ['-c', '-i', 'bench-persist', '-q', '1', '-t', 'replug/#']),
  mosquittoSub('exact devices', ['-t', 'replug/bench/devices']),
];
await sleep(800);

const pub = await mqtt.connectAsync(url, { clientId: 'replug-bench', protocolVersion: 5 });
let next = 1;
let devicesSent = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: INFLIGHT }, async () => {
    while (next <= EVENTS) {
      const seq = next++;
      const sends = [pub.publishAsync('replug/bench/event', JSON.stringify({ seq }), { qos: 1 })];
      if (seq % 10 === 0) {
        devicesSent++;
        sends.push(
          pub.publishAsync('replug/bench/devices', JSON.stringify({ n: seq }), { qos: 1, retain: true }),
        );
      }
      await Promise.all(sends);
    }
  }),
);
const elapsed = performance.now() - t0;
await sleep(2000);
await pub.endAsync();

console.log(`${BARE ? 'bare aedes 2.0.0-beta.1 + aedes-persistence-level' : 'startBroker (replug fixes)'}`);
console.log(
  `${EVENTS} QoS 1 events, ${devicesSent} retained devices updates, ${INFLIGHT} in flight, ${elapsed.toFixed(0)} ms to publish`,
);
console.log('subscriber                     events  late  lost  devices');
let bad = 0;
for (const s of subs) {
  const seqs = s.lines
    .filter((l) => l.startsWith('replug/bench/event '))
    .map((l) => JSON.parse(l.slice(19)).seq);
  const devices = s.lines.filter((l) => l.startsWith('replug/bench/devices ')).length;
  let max = 0;
  let late = 0;
  for (const q of seqs) {
    if (q < max) late++;
    max = Math.max(max, q);
  }
  const wantsEvents = !s.name.startsWith('exact');
  const lost = wantsEvents ? EVENTS - new Set(seqs).size : 0;
  bad += late + lost + (devicesSent - devices);
  console.log(
    `${s.name.padEnd(30)} ${String(wantsEvents ? seqs.length : '-').padStart(6)} ${String(late).padStart(5)} ${String(lost).padStart(5)} ${String(devices).padStart(4)}/${devicesSent}`,
  );
  s.child.kill();
}
console.log(bad === 0 ? 'PASS (0 late, 0 lost, every devices update)' : 'FAIL');
await close();
rmSync(dir, { recursive: true, force: true });
