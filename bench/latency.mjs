#!/usr/bin/env node
/**
 * Benchmark (issue 3): end-to-end latency from a USB device appearing on a fake sysfs/devfs tree to its
 * `device.added` event reaching an MQTT subscriber, through the embedded Aedes and through Mosquitto.
 * Run after `npm run build`:  node bench/latency.mjs [--plugs 200] [--warmup 10]
 *
 * Honest by construction:
 * - the agent is the real CLI (`dist/src/bin/replug.js agent`) in its own process with its default
 *   detection settings, as a user runs it; only the tree roots, state dir and broker are given;
 * - t0 is taken in this process just BEFORE the sysfs entry is written (the kernel's order: sysfs entry,
 *   then the devtmpfs node), so the figure includes the whole plug; t1 is this process's MQTT.js 'message'
 *   callback for that device's event. Both come from the same monotonic clock (performance.now);
 * - one device at a time: each plug waits for its event, then unplugs and waits for device.removed, so no
 *   measurement overlaps another; every plug gets a new address like the kernel hands out.
 * Figures are printed, never asserted. Goal on a 2-core machine: p50 <= 20 ms, p99 <= 100 ms.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const cli = path.join(root, 'dist/src/bin/replug.js');
if (!existsSync(cli)) {
  console.error('bench/latency.mjs: run `npm run build` first');
  process.exit(2);
}
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PLUGS = arg('plugs', 200);
const WARMUP = arg('warmup', 10);
const GOAL = { p50: 20, p99: 100 };
const VID = 0x1209;
const PID = 0x0001;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function ramTmpDir() {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

function findExecutable(name) {
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

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** usbfs node content: device descriptor (USB 2.0 §9.6.1) + one configuration with one interface. */
function descriptors(vid, pid, strings) {
  const dev = Buffer.alloc(18);
  dev.writeUInt8(18, 0);
  dev.writeUInt8(1, 1);
  dev.writeUInt16LE(0x0200, 2);
  dev.writeUInt8(64, 7);
  dev.writeUInt16LE(vid, 8);
  dev.writeUInt16LE(pid, 10);
  dev.writeUInt16LE(0x0100, 12);
  dev.writeUInt8(strings ? 1 : 0, 14);
  dev.writeUInt8(strings ? 2 : 0, 15);
  dev.writeUInt8(strings ? 3 : 0, 16);
  dev.writeUInt8(1, 17);
  const cfg = Buffer.from([9, 2, 18, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xff, 0, 0, 0]);
  return Buffer.concat([dev, cfg]);
}

const pad3 = (n) => String(n).padStart(3, '0');
const hex4 = (n) => n.toString(16).padStart(4, '0');

/** The same layout and write order as test/fakes/usb-tree.ts (sysfs entry, interface, then the node). */
class Tree {
  constructor() {
    this.root = mkdtempSync(path.join(ramTmpDir(), 'replug-bench-'));
    this.sys = path.join(this.root, 'sys');
    this.dev = path.join(this.root, 'dev');
    this.devices = path.join(this.sys, 'bus/usb/devices');
    this.busDir = path.join(this.dev, 'bus/usb/001');
    mkdirSync(this.devices, { recursive: true });
    mkdirSync(this.busDir, { recursive: true });
    const hub = path.join(this.devices, 'usb1');
    mkdirSync(hub);
    const attrs = { idVendor: '1d6b', idProduct: '0002', bcdDevice: '0601', bDeviceClass: '09', busnum: '1' };
    for (const [k, v] of Object.entries({ ...attrs, devnum: '1', devpath: '0', speed: '480' }))
      writeFileSync(path.join(hub, k), `${v}\n`);
    writeFileSync(path.join(this.busDir, '001'), descriptors(0x1d6b, 0x0002, false));
    this.nextAddress = 2;
  }

  plug(serial) {
    const address = this.nextAddress;
    this.nextAddress = address >= 127 ? 2 : address + 1;
    const dir = path.join(this.devices, '1-1');
    mkdirSync(dir);
    const attrs = {
      idVendor: hex4(VID),
      idProduct: hex4(PID),
      bcdDevice: '0100',
      bDeviceClass: '00',
      bNumConfigurations: '1',
      bConfigurationValue: '1',
      busnum: '1',
      devnum: String(address),
      devpath: '1',
      speed: '480',
      version: ' 2.00',
      manufacturer: 'replug',
      product: 'Bench',
      serial,
      uevent: `MAJOR=189\nMINOR=${address - 1}\nDEVNAME=bus/usb/001/${pad3(address)}\nDEVTYPE=usb_device\nPRODUCT=${VID.toString(16)}/${PID.toString(16)}/100\nBUSNUM=001\nDEVNUM=${pad3(address)}`,
    };
    for (const [k, v] of Object.entries(attrs)) writeFileSync(path.join(dir, k), `${v}\n`);
    const iface = path.join(this.devices, '1-1:1.0');
    mkdirSync(iface);
    writeFileSync(path.join(iface, 'bInterfaceClass'), 'ff\n');
    writeFileSync(path.join(iface, 'bInterfaceNumber'), '00\n');
    writeFileSync(path.join(this.busDir, pad3(address)), descriptors(VID, PID, true));
    return address;
  }

  unplug(address) {
    rmSync(path.join(this.devices, '1-1:1.0'), { recursive: true, force: true });
    rmSync(path.join(this.busDir, pad3(address)), { force: true });
    rmSync(path.join(this.devices, '1-1'), { recursive: true, force: true });
  }

  cleanup() {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** `replug agent` as a child process; resolves with it and the URL it publishes to. */
async function startAgent({ id, tree, stateDir, mqttUrl }) {
  const args = [
    cli,
    'agent',
    '--log-format',
    'json',
    '--id',
    id,
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
  ];
  args.push('--state-dir', stateDir, ...(mqttUrl ? ['--mqtt', mqttUrl] : ['--broker-port', '0']));
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr += d;
  });
  const url = await new Promise((resolve, reject) => {
    let partial = '';
    const timer = setTimeout(() => reject(new Error(`agent did not start: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`agent exited ${code}: ${stderr}`)));
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        let msg = '';
        try {
          msg = JSON.parse(line).msg ?? '';
        } catch {
          continue;
        }
        const embedded = /^broker listening on (mqtt:\/\/\S+)/.exec(msg);
        if (embedded && !mqttUrl) {
          clearTimeout(timer);
          resolve(embedded[1]);
        }
        if (mqttUrl && msg.startsWith('connected to broker')) {
          clearTimeout(timer);
          resolve(mqttUrl);
        }
      }
    });
  });
  return {
    url,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      child.kill('SIGKILL');
    },
  };
}

async function startMosquitto() {
  const binary = findExecutable('mosquitto');
  if (!binary) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-mosquitto-'));
  const port = await freePort();
  const conf = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false'];
  conf.push(`user ${os.userInfo().username}`, 'log_dest none');
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${conf.join('\n')}\n`);
  const child = spawn(binary, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error('mosquitto did not listen');
    await sleep(25);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Plugs and unplugs one device at a time; returns per-plug latency (ms) and first-seen source. */
async function measure(brokerName, mqttUrl) {
  const tree = new Tree();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'replug-bench-state-'));
  const id = `bench-${brokerName.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  const agent = await startAgent({ id, tree, stateDir, mqttUrl });
  const waiting = new Map(); // `${type} ${serial}` -> resolve(receivedAt, payload)
  const sub = await mqtt.connectAsync(agent.url, { protocolVersion: mqttUrl ? 5 : 4 });
  sub.on('message', (_topic, payload) => {
    const at = performance.now();
    const ev = JSON.parse(payload.toString('utf8'));
    const resolve = waiting.get(`${ev.type} ${ev.device?.serial}`);
    if (resolve) resolve({ at, ev });
  });
  await sub.subscribeAsync(`replug/${id}/event`, { qos: 1 });
  const expect = (type, serial) =>
    new Promise((resolve, reject) => {
      const key = `${type} ${serial}`;
      const timer = setTimeout(() => reject(new Error(`${brokerName}: no ${key} within 10 s`)), 10_000);
      waiting.set(key, (v) => {
        clearTimeout(timer);
        waiting.delete(key);
        resolve(v);
      });
    });

  const samples = [];
  const removals = [];
  const sources = {};
  try {
    for (let i = 0; i < WARMUP + PLUGS; i++) {
      const serial = `L${i}`;
      const added = expect('device.added', serial);
      const t0 = performance.now();
      const address = tree.plug(serial);
      const { at, ev } = await added;
      if (i >= WARMUP) {
        samples.push(at - t0);
        sources[ev.source] = (sources[ev.source] ?? 0) + 1;
      }
      const removed = expect('device.removed', serial);
      const t2 = performance.now();
      tree.unplug(address);
      const gone = await removed;
      if (i >= WARMUP) removals.push(gone.at - t2);
      await sleep(5); // let the watcher finish with the removal before the next device appears
    }
  } finally {
    await sub.endAsync();
    await agent.stop();
    tree.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const removedSorted = [...removals].sort((a, b) => a - b);
  return {
    removedP50: percentile(removedSorted, 50),
    removedP99: percentile(removedSorted, 99),
    broker: brokerName,
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
    sources,
  };
}

const results = [];
results.push(await measure('embedded Aedes', undefined));
const mosquitto = await startMosquitto();
if (mosquitto) {
  try {
    results.push(await measure('Mosquitto', mosquitto.url));
  } finally {
    await mosquitto.stop();
  }
}

const f = (ms) => ms.toFixed(1).padStart(7);
console.log('');
console.log('replug agent: fake-tree plug -> device.added at an MQTT subscriber (QoS 1)');
console.log(
  `${PLUGS} plugs per broker after ${WARMUP} warm-up; agent = the CLI as a child process, default sources and intervals`,
);
console.log(
  `host: ${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('');
console.log(`broker            n   p50 ms  p99 ms  max ms  goal p50<=${GOAL.p50} p99<=${GOAL.p99}`);
for (const r of results) {
  const ok = r.p50 <= GOAL.p50 && r.p99 <= GOAL.p99;
  console.log(
    `${r.broker.padEnd(15)} ${String(r.n).padStart(4)} ${f(r.p50)} ${f(r.p99)} ${f(r.max)}  ${ok ? 'PASS' : 'MISS'}`,
  );
}
if (!mosquitto) console.log('Mosquitto        skipped: not installed (apt-get install -y mosquitto)');
console.log('');
console.log('unplug -> device.removed at the subscriber (informational, no goal):');
for (const r of results)
  console.log(`  ${r.broker.padEnd(15)} p50 ${f(r.removedP50)} ms  p99 ${f(r.removedP99)} ms`);
console.log('');
console.log('first seen by (share of device.added):');
for (const r of results) {
  const total = Object.values(r.sources).reduce((a, b) => a + b, 0);
  const parts = [
    'devfs',
    'sysfs',
    ...Object.keys(r.sources).filter((s) => s !== 'devfs' && s !== 'sysfs'),
  ].map((s) => `${s} ${(((r.sources[s] ?? 0) / total) * 100).toFixed(1)} %`);
  console.log(`  ${r.broker.padEnd(15)} ${parts.join(', ')}`);
}
