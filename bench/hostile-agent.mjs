#!/usr/bin/env node
/**
 * Issue 12 figures for the agent under hostile input, measured on the real CLI with fake trees:
 *   node bench/hostile-agent.mjs [--cli dist/src/bin/replug.js] [--only fifo,many,values,flood,statedir,driver]
 *   fifo      FIFOs in place of devfs nodes and sysfs attributes: events over 2 replug cycles, SIGTERM -> exit
 *   many      2,000 devices on 16 buses without /sys/dev/char links: peak fds, peak RSS, devices reported
 *   values    out-of-range and oversized sysfs values: what the retained `devices` payload carries
 *   flood     a driver whose probe fails at once (25 s) and one with a 1 MB error (50 s): log lines/bytes
 *   statedir  --state-dir /proc/x: time to exit, CPU used, what it printed
 *   driver    a --driver factory that never resolves: what it logged, SIGINT -> exit
 * `--cli` points at another build (e.g. one of an older commit) to measure "before". Figures are printed,
 * never asserted; the goal is printed beside each.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const cli = path.resolve(opt('cli', path.join(root, 'dist/src/bin/replug.js')));
if (!existsSync(cli)) {
  console.error(`bench/hostile-agent.mjs: ${cli} missing; run \`npm run build\` first`);
  process.exit(2);
}
const only = new Set((opt('only', 'fifo,many,values,flood,statedir,driver') ?? '').split(','));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'hostile-bench-'));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function descriptor(vid, pid) {
  const b = Buffer.alloc(18);
  b[0] = 18;
  b[1] = 1;
  b.writeUInt16LE(0x200, 2);
  b[7] = 64;
  b.writeUInt16LE(vid, 8);
  b.writeUInt16LE(pid, 10);
  b.writeUInt16LE(0x100, 12);
  b[17] = 1;
  return b;
}

/** A fake tree like test/fakes/usb-tree.ts: sysfs entry first, then the node. */
class Tree {
  constructor(dir) {
    this.dir = dir;
    this.sys = path.join(dir, 'sys');
    this.dev = path.join(dir, 'dev');
    mkdirSync(path.join(this.sys, 'bus/usb/devices'), { recursive: true });
    mkdirSync(path.join(this.dev, 'bus/usb'), { recursive: true });
  }
  entry(port) {
    return path.join(this.sys, 'bus/usb/devices', port);
  }
  node(bus, addr) {
    return path.join(this.dev, 'bus/usb', String(bus).padStart(3, '0'), String(addr).padStart(3, '0'));
  }
  plug({ bus = 1, port, addr, vid = 0x1209, pid = 0x0001, attrs = {}, fifoNode = false, fifoAttrs = [] }) {
    const d = this.entry(port);
    mkdirSync(d, { recursive: true });
    const base = {
      idVendor: vid.toString(16).padStart(4, '0'),
      idProduct: pid.toString(16).padStart(4, '0'),
      busnum: String(bus),
      devnum: String(addr),
      speed: '480',
      bcdDevice: '0100',
      bDeviceClass: '00',
      ...attrs,
    };
    for (const [k, v] of Object.entries(base)) {
      if (fifoAttrs.includes(k)) execFileSync('mkfifo', [path.join(d, k)]);
      else writeFileSync(path.join(d, k), `${v}\n`);
    }
    for (const k of fifoAttrs) if (!(k in base)) execFileSync('mkfifo', [path.join(d, k)]);
    const n = this.node(bus, Number(addr) > 0 && Number(addr) < 1000 ? Number(addr) : 99);
    mkdirSync(path.dirname(n), { recursive: true });
    if (fifoNode) execFileSync('mkfifo', [n]);
    else writeFileSync(n, descriptor(vid, pid));
    return { port, bus, addr };
  }
  unplug({ port, bus, addr }) {
    rmSync(this.node(bus, addr), { force: true });
    rmSync(this.entry(port), { recursive: true, force: true });
  }
}

function startAgent(args, env = {}) {
  const child = spawn(process.execPath, [cli, 'agent', '--log-format', 'json', ...args], {
    env: { PATH: process.env.PATH, HOME: work, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { lines: 0, bytes: 0, logs: [], stderr: '' };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out.bytes += Buffer.byteLength(d);
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      if (!l) continue;
      out.lines++;
      if (l.length < 20_000) {
        try {
          out.logs.push(JSON.parse(l));
        } catch {
          out.logs.push({ msg: l });
        }
      } else out.logs.push({ msg: `${l.slice(0, 200)}…`, long: l.length });
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    out.stderr += d;
  });
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

async function waitFor(check, ms, step = 50) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = check();
    if (v) return v;
    await sleep(step);
  }
  return undefined;
}

async function stopTimed(agent, signal = 'SIGTERM', capMs = 30_000) {
  const t0 = Date.now();
  agent.child.kill(signal);
  const r = await Promise.race([agent.exited, sleep(capMs).then(() => undefined)]);
  const ms = Date.now() - t0;
  if (!r) {
    agent.child.kill('SIGKILL');
    await agent.exited;
    return { ms, exited: false };
  }
  return { ms, exited: true, ...r };
}

function subscribe(url, topic) {
  const client = mqtt.connect(url, { reconnectPeriod: 200 });
  const got = [];
  client.on('connect', () => client.subscribe(topic, { qos: 1 }));
  client.on('message', (t, p) => got.push({ t, p, at: Date.now() }));
  return { client, got };
}

function fds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function status(pid, key) {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const line = (label, value, goal) =>
  console.log(`  ${label.padEnd(44)} ${String(value).padEnd(22)} goal: ${goal}`);

async function fifo() {
  console.log('\nfifo: 4 devices whose usbfs nodes are FIFOs, 1 whose manufacturer attribute is a FIFO');
  const tree = new Tree(path.join(work, 'fifo'));
  for (let i = 0; i < 4; i++) tree.plug({ port: `1-${i + 2}`, addr: i + 2, pid: 0x10 + i, fifoNode: true });
  tree.plug({ port: '1-7', addr: 7, pid: 0x20, fifoAttrs: ['manufacturer'], attrs: {} });
  const port = await freePort();
  const agent = startAgent([
    '--id',
    'hostile-fifo',
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
    '--state-dir',
    path.join(work, 'fifo-state'),
    '--broker-port',
    String(port),
    '--settle',
    '200',
  ]);
  await waitFor(() => agent.out.logs.some((l) => /^broker listening/.test(l.msg)), 10_000);
  const sub = subscribe(`mqtt://127.0.0.1:${port}`, 'replug/hostile-fifo/event');
  await sleep(3000);
  let added = 0;
  let removed = 0;
  for (let cycle = 0; cycle < 2; cycle++) {
    const before = sub.got.length;
    const d = tree.plug({ port: '1-9', addr: 20 + cycle, pid: 0x0002 });
    await sleep(2500);
    tree.unplug(d);
    await sleep(2500);
    for (const m of sub.got.slice(before)) {
      const e = JSON.parse(String(m.p));
      if (e.type === 'device.added' && e.device?.pid === '0002') added++;
      if (e.type === 'device.removed' && e.device?.pid === '0002') removed++;
    }
  }
  const stop = await stopTimed(agent);
  sub.client.end(true);
  line('device.added + device.removed over 2 cycles', `${added} + ${removed}`, '2 + 2');
  line(
    'SIGTERM -> exit',
    stop.exited ? `${stop.ms} ms (code ${stop.code})` : `> ${stop.ms} ms (killed)`,
    '< 2000 ms',
  );
}

async function many() {
  const buses = 16;
  const per = 125;
  console.log(`\nmany: ${buses * per} devices on ${buses} buses, no /sys/dev/char links`);
  const tree = new Tree(path.join(work, 'many'));
  for (let b = 1; b <= buses; b++)
    for (let i = 0; i < per; i++)
      tree.plug({ bus: b, port: `${b}-${i + 1}`, addr: i + 2, attrs: { serial: `B${b}D${i}` } });
  const port = await freePort();
  const agent = startAgent([
    '--id',
    'hostile-many',
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
    '--state-dir',
    path.join(work, 'many-state'),
    '--broker-port',
    String(port),
    '--health-interval',
    '2000',
  ]);
  await waitFor(() => agent.out.logs.some((l) => /^broker listening/.test(l.msg)), 10_000);
  const sub = subscribe(`mqtt://127.0.0.1:${port}`, 'replug/hostile-many/+');
  let maxFds = 0;
  let count = 0;
  let stableSince = Date.now();
  const t0 = Date.now();
  const limit = Number(opt('many-seconds', '60')) * 1000;
  while (Date.now() - t0 < limit) {
    maxFds = Math.max(maxFds, fds(agent.child.pid));
    const last = sub.got.filter((m) => m.t.endsWith('/devices')).at(-1);
    const c = last ? JSON.parse(String(last.p)).count : 0;
    if (c !== count) {
      count = c;
      stableSince = Date.now();
    }
    if (count === buses * per && Date.now() - stableSince > 3000) break;
    await sleep(100);
  }
  const took = Date.now() - t0;
  const peak = status(agent.child.pid, 'VmHWM');
  const healths = sub.got.filter((m) => m.t.endsWith('/health'));
  const lastHealth = healths.at(-1);
  const emfile = agent.out.logs.filter((l) => /EMFILE/.test(JSON.stringify(l))).length;
  await stopTimed(agent);
  sub.client.end(true);
  line('peak open fds', maxFds, '< 200');
  line('peak RSS (VmHWM)', mb(peak), '< 500 MB');
  line('devices in the retained devices payload', `${count} of ${buses * per}`, `${buses * per}`);
  line('time to the full list', `${(took / 1000).toFixed(1)} s`, '(figure)');
  line('log lines mentioning EMFILE', emfile, '0');
  line(
    'health payloads (2 s interval)',
    `${healths.length}, last rss ${lastHealth ? JSON.parse(String(lastHealth.p)).memory.rssBytes : '-'}`,
    'one every 2 s',
  );
}

async function values() {
  console.log('\nvalues: sysfs attributes no real device can have');
  const tree = new Tree(path.join(work, 'values'));
  const esc = '\u001b]0;PWNED\u0007\u001b[31mred';
  tree.plug({ port: '1-1', addr: 200, pid: 0x31 });
  tree.plug({ port: '1-2', addr: '4294967296', pid: 0x32 });
  tree.plug({ bus: '100000000000000000000', port: '1-3', addr: 5, pid: 0x33 });
  tree.plug({ port: '1-4', addr: 6, pid: 0x34, attrs: { manufacturer: 'M'.repeat(5 * 1024 * 1024) } });
  tree.plug({ port: '1-5', addr: 7, pid: 0x35, attrs: { serial: 'S'.repeat(2 * 1024 * 1024) } });
  tree.plug({ port: '1-6', addr: 8, pid: 0x36, attrs: { product: `Evil${esc}`, serial: `AB${esc}` } });
  tree.plug({ port: '1-7', addr: 9, pid: 0x37, attrs: { speed: `480${esc}`, bcdDevice: 'zz\u001b[2J' } });
  const port = await freePort();
  const agent = startAgent([
    '--id',
    'hostile-values',
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
    '--state-dir',
    path.join(work, 'values-state'),
    '--broker-port',
    String(port),
  ]);
  await waitFor(() => agent.out.logs.some((l) => /^broker listening/.test(l.msg)), 10_000);
  const sub = subscribe(`mqtt://127.0.0.1:${port}`, 'replug/hostile-values/devices');
  await waitFor(() => sub.got.length > 0, 15_000);
  await sleep(3000);
  const last = sub.got.at(-1);
  await stopTimed(agent);
  sub.client.end(true);
  if (!last) return line('devices payload', 'none received', 'one');
  const p = JSON.parse(String(last.p));
  const strings = p.devices.flatMap((d) => Object.values(d).filter((v) => typeof v === 'string'));
  const texts = p.devices.flatMap((d) =>
    [d.serial, d.manufacturer, d.product].filter((v) => typeof v === 'string'),
  );
  line('devices payload size', `${last.p.length} bytes`, '< 4 KB');
  line('addresses published', p.devices.map((d) => d.address).join(', '), 'each 1..127');
  line('buses published', [...new Set(p.devices.map((d) => d.bus))].join(', '), 'each 1..63');
  line('longest serial/manufacturer/product', `${Math.max(...texts.map((s) => s.length))} chars`, '<= 126');
  const control = (text) =>
    [...text].some((c) => c.charCodeAt(0) < 32 || (c.charCodeAt(0) >= 127 && c.charCodeAt(0) < 160));
  line('strings with control characters', strings.filter(control).length, '0');
  const cutLines = agent.out.logs.filter((l) =>
    /^device \S+ at bus .* (ignored )?\(from \w+\): /.test(String(l.msg)),
  );
  line('log lines saying what was cut', cutLines.length, 'one per device');
  if (argv.includes('--verbose')) for (const l of cutLines) console.log(`    ${String(l.msg).slice(0, 150)}`);
}

async function flood() {
  console.log('\nflood: drivers that fail in a loop');
  for (const [name, body, seconds] of [
    [
      'probefail',
      "probeIntervalMs: 50, async open() { return {}; }, async probe() { throw Object.assign(new Error('device stopped answering'), { code: 'REPLUG_USB_IO' }); }",
      25,
    ],
    [
      'bigerr',
      "async open() { throw Object.assign(new Error('E'.repeat(1024 * 1024)), { code: 'REPLUG_USB_IO' }); }, async probe() {}",
      50,
    ],
  ]) {
    const tree = new Tree(path.join(work, `flood-${name}`));
    tree.plug({ port: '1-1', addr: 2 });
    const file = path.join(work, `${name}.mjs`);
    writeFileSync(file, `export default { name: '${name}', ${body}, async close() {} };\n`);
    const agent = startAgent([
      '--id',
      `hostile-${name}`,
      '--sysfs-root',
      tree.sys,
      '--devfs-root',
      tree.dev,
      '--state-dir',
      path.join(work, `${name}-state`),
      '--broker-port',
      '0',
      '--target',
      '1209:0001',
      '--driver',
      file,
    ]);
    await sleep(seconds * 1000);
    await stopTimed(agent);
    line(
      `${name}: log over ${seconds} s`,
      `${agent.out.lines} lines, ${mb(agent.out.bytes)}`,
      '< 100 lines, < 1 MB',
    );
  }
}

async function statedir() {
  console.log('\nstatedir: --state-dir /proc/x');
  const t0 = Date.now();
  const agent = startAgent(['--state-dir', '/proc/hostile-x', '--broker-port', '0']);
  const r = await Promise.race([agent.exited, sleep(5000).then(() => undefined)]);
  const ms = Date.now() - t0;
  let cpu = '-';
  if (!r) {
    try {
      const stat = readFileSync(`/proc/${agent.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      const ticks = Number(stat[11]) + Number(stat[12]);
      cpu = `${Math.round((ticks * 1000) / ms)} %`; // CLK_TCK is 100 on Linux: ticks/100 s over ms/1000 s
    } catch {}
    agent.child.kill('SIGINT');
    const after = await Promise.race([agent.exited, sleep(3000).then(() => undefined)]);
    if (!after) agent.child.kill('SIGKILL');
    await agent.exited;
    line(
      'exit',
      `none after ${ms} ms (CPU ${cpu}); SIGINT ${after ? 'ended it' : 'ignored'}`,
      'exit 1 < 1000 ms',
    );
  } else {
    // Exec to exit includes Node's own start-up, which a loaded machine stretches to seconds: the same
    // CLI's `--version`, timed right after, is the floor the figure is read against.
    const f0 = Date.now();
    execFileSync(process.execPath, [cli, '--version'], { stdio: 'ignore' });
    const floor = Date.now() - f0;
    line(
      'exit',
      `code ${r.code} after ${ms} ms (replug --version: ${floor} ms)`,
      'exit 1, < 1000 ms above --version',
    );
  }
  line('stderr', JSON.stringify(agent.out.stderr.trim().slice(0, 120)), 'one line naming the dir');
}

async function driver() {
  console.log('\ndriver: a --driver factory that never resolves');
  const tree = new Tree(path.join(work, 'driver'));
  const file = path.join(work, 'never.mjs');
  writeFileSync(file, 'export default () => new Promise(() => {});\n');
  const agent = startAgent([
    '--id',
    'hostile-driver',
    '--sysfs-root',
    tree.sys,
    '--devfs-root',
    tree.dev,
    '--state-dir',
    path.join(work, 'driver-state'),
    '--broker-port',
    '0',
    '--target',
    '1209:0001',
    '--driver',
    file,
  ]);
  // Wait for the line, not a fixed time: on a loaded machine Node's start-up alone can take seconds.
  const aboutDriver = () => agent.out.logs.filter((l) => /driver/.test(String(l.msg))).map((l) => l.msg);
  for (let waited = 0; waited < 10000 && aboutDriver().length === 0; waited += 100) await sleep(100);
  await sleep(1000); // the factory has had a second to (never) resolve
  const said = aboutDriver();
  const stop = await stopTimed(agent, 'SIGINT', 8000);
  line(
    'log lines about the driver before SIGINT',
    JSON.stringify(said).slice(0, 80),
    "'loading session driver ...'",
  );
  line(
    'SIGINT -> exit',
    stop.exited ? `${stop.ms} ms (code ${stop.code})` : `> ${stop.ms} ms (ignored; killed)`,
    '< 1000 ms, code 0',
  );
}

console.log(`bench/hostile-agent.mjs: ${path.relative(process.cwd(), cli) || cli}`);
try {
  if (only.has('fifo')) await fifo();
  if (only.has('many')) await many();
  if (only.has('values')) await values();
  if (only.has('flood')) await flood();
  if (only.has('statedir')) await statedir();
  if (only.has('driver')) await driver();
} finally {
  rmSync(work, { recursive: true, force: true });
}
