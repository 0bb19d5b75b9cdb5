#!/usr/bin/env node
/**
 * Issue 11 figures: `replug broker` (a child process, its RSS read from /proc) under each attack of the
 * issue, with a legitimate login timed throughout. Figures are printed with their counts and goal; the
 * abuse suite (test/broker/abuse) runs the same attacks with smaller counts and checks wide bounds.
 *   node bench/abuse.mjs [--cli dist/src/bin/replug.js] [--only connect,idle,takeover,anon,retained,slow,guess,nul,tls]
 * `--cli` points at another build (e.g. of an older commit) to measure "before".
 * `node bench/abuse.mjs attack NAME HOST PORT [N]` runs one attack's client side only (the suite runs
 * it inside a network namespace it made, so the attack comes from another address).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** `replug broker` on a free port; resolves once it logs its listen line. */
export async function startBrokerProcess(cli, args = [], env = {}) {
  const child = spawn(process.execPath, [cli, 'broker', '--port', '0', '--log-level', 'info', ...args], {
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let buf = '';
  const onData = (d) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const deadline = Date.now() + 30_000;
  let port;
  while (port === undefined) {
    for (const l of lines) port ??= /listening on mqtts?:\/\/[^ ]*:(\d+)/.exec(l)?.[1];
    if (child.exitCode !== null) throw new Error(`broker exited: ${lines.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`broker did not start: ${lines.join('\n')}`);
    await sleep(50);
  }
  return {
    child,
    lines,
    port: Number(port),
    url: `mqtt://127.0.0.1:${port}`,
    rss: () => rssMiB(child.pid),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((r) => child.once('exit', r));
      clearTimeout(t);
    },
  };
}

/** ms to a CONNACK (or the refusal), bounded by `timeoutMs`; Infinity when none came. */
export function timeLogin(url, options = {}, timeoutMs = 20_000) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const { localAddress, ...rest } = options;
    const opts = { reconnectPeriod: 0, connectTimeout: timeoutMs, ...rest };
    // Another source address on loopback (127.0.0.2): the kernel would pick 127.0.0.1 for us otherwise.
    const u = new URL(url);
    const c = localAddress
      ? new mqtt.MqttClient(
          () => net.createConnection({ host: u.hostname, port: Number(u.port), localAddress }),
          opts,
        )
      : mqtt.connect(url, opts);
    const done = (ok) => {
      c.end(true);
      resolve({ ms: ok === undefined ? Number.POSITIVE_INFINITY : Math.round(performance.now() - t0), ok });
    };
    c.on('connect', () => done(true));
    c.on('error', () => done(false));
    c.on('close', () => done(undefined));
  });
}

/** Times a login every `everyMs` until stop() and says the worst. */
export function loginProbe(url, options = {}, everyMs = 500) {
  const times = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      times.push((await timeLogin(url, options)).ms);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { worstMs: Math.max(...times), count: times.length };
    },
  };
}

function socket(host, port) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  });
}

/** Sockets announcing a 268,435,455-byte CONNECT that stream `mb` MB each (or until the broker closes them). */
export async function attackConnect(host, port, sockets = 2, mb = 150, ms = 15_000) {
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const all = await Promise.all(Array.from({ length: sockets }, () => socket(host, port)));
  const sent = all.map(() => 0);
  const until = Date.now() + ms;
  await Promise.all(
    all.map(async (s, i) => {
      if (s.destroyed) return;
      s.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
      while (!s.destroyed && sent[i] < mb * 1024 * 1024 && Date.now() < until) {
        if (!s.write(chunk)) {
          await new Promise((r) => {
            s.once('drain', r);
            s.once('close', r);
          });
        }
        sent[i] += chunk.length;
      }
    }),
  );
  const closedByBroker = all.filter((s) => s.destroyed).length;
  return {
    sockets,
    sentMB: Math.round(sent.reduce((a, b) => a + b, 0) / 1048576),
    closedByBroker,
    hold: all,
  };
}

/** `n` sockets that never send anything. */
export async function attackIdle(host, port, n = 3000) {
  const all = [];
  for (let i = 0; i < n; i++) all.push(await socket(host, port));
  return all;
}

/** Password guesses from `parallel` connections for `ms`; returns attempts and their rate. */
export async function attackGuess(url, username, parallel = 64, ms = 10_000) {
  let attempts = 0;
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: parallel }, async (_, i) => {
      while (Date.now() < until) {
        await timeLogin(url, { username, password: `guess-${i}-${attempts}`, protocolVersion: 4 }, ms);
        attempts++;
      }
    }),
  );
  return { attempts, perSecond: Math.round((attempts / ms) * 1000) };
}

/** Publishes `count` retained topics (QoS 0, a QoS 1 barrier every 1,000); returns how many were taken. */
export async function plantRetained(url, options, count, rootOf) {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  let accepted = 0;
  c.on('error', () => undefined);
  const payload = Buffer.alloc(300, 0x78);
  for (let i = 0; i < count && c.connected; i++) {
    c.publish(`replug/${rootOf(i)}/t/${i}`, payload, { qos: 0, retain: true });
    if (i % 1000 === 999) {
      // A refused publish may close the connection (3.1.1), leaving publishAsync unanswered: race the close.
      let onClose;
      const closed = new Promise((r) => {
        onClose = () => r(false);
        c.once('close', onClose);
      });
      const ok = await Promise.race([
        c.publishAsync(`replug/${rootOf(i)}/barrier`, 'b', { qos: 1, retain: true }).then(
          () => true,
          () => false,
        ),
        closed,
      ]);
      c.off('close', onClose);
      if (!ok) break;
      accepted = i + 1;
    }
  }
  await c.endAsync(true).catch(() => undefined);
  return accepted;
}

/** Counts retained topics under a filter (a subscriber that reads until quiet). */
export async function countRetained(url, filter, options = {}) {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  let n = 0;
  let last = Date.now();
  c.on('message', (_t, _p, packet) => {
    if (packet.retain) n++;
    last = Date.now();
  });
  await c.subscribeAsync(filter);
  while (Date.now() - last < 1000) await sleep(200);
  await c.endAsync(true);
  return n;
}

/** A self-signed certificate valid in 2020 only (`openssl ca` takes explicit dates; `req -days` cannot). */
export function expiredCert(dir) {
  const f = (n) => path.join(dir, n);
  writeFileSync(f('index.txt'), '');
  writeFileSync(f('serial'), '01\n');
  const conf = `[ca]\ndefault_ca = d\n[d]\ndatabase = ${f('index.txt')}\nserial = ${f('serial')}\nnew_certs_dir = ${dir}\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n`;
  writeFileSync(f('ca.cnf'), conf);
  const q = { stdio: 'ignore' };
  execFileSync(
    'openssl',
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      f('k.pem'),
      '-out',
      f('r.csr'),
      '-subj',
      '/CN=127.0.0.1',
    ],
    q,
  );
  execFileSync(
    'openssl',
    [
      'ca',
      '-batch',
      '-config',
      f('ca.cnf'),
      '-selfsign',
      '-keyfile',
      f('k.pem'),
      '-in',
      f('r.csr'),
      '-out',
      f('c.pem'),
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20210101000000Z',
    ],
    q,
  );
  return { cert: f('c.pem'), key: f('k.pem') };
}

export function makeUsers(cli, dir, users) {
  const file = path.join(dir, 'users');
  for (const [name, role, pw] of users) {
    execFileSync(process.execPath, [cli, 'broker', 'passwd', file, name, '--role', role], {
      input: `${pw}\n`,
    });
  }
  return file;
}

/** The scenarios: each starts its own broker and returns printable figures. */
const SCENARIOS = {
  async connect(cli) {
    const b = await startBrokerProcess(cli);
    try {
      const before = b.rss();
      const probe = loginProbe(b.url);
      const a = await attackConnect('127.0.0.1', b.port, 2, 150);
      const during = b.rss();
      const login = await probe.stop();
      for (const s of a.hold) s.destroy();
      return {
        before,
        during,
        ...pick(a, 'sockets', 'sentMB', 'closedByBroker'),
        loginWorstMs: login.worstMs,
        goal: 'RSS +<50 MB, sockets closed',
      };
    } finally {
      await b.stop();
    }
  },
  async packet(cli) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const b = await startBrokerProcess(cli, ['--state-dir', dir]);
    try {
      const before = b.rss();
      const c = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 });
      c.on('error', () => undefined);
      const closed = new Promise((r) => c.once('close', () => r('closed')));
      const r = await Promise.race([
        c
          .publishAsync('replug/a/huge', Buffer.alloc(100 * 1024 * 1024), { qos: 1, retain: true })
          .then(() => 'acked'),
        closed,
      ]);
      const peak = b.rss();
      c.end(true);
      const stored = await countRetained(b.url, 'replug/a/huge');
      const du = execFileSync('du', ['-sm', path.join(dir, 'broker.leveldb')])
        .toString()
        .split('\t')[0];
      return {
        publishMB: 100,
        outcome: r,
        storedRetained: stored,
        leveldbMB: Number(du),
        before,
        peak,
        goal: 'refused, nothing stored',
      };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async idle(cli, opts) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const b = await startBrokerProcess(cli, ['--state-dir', dir]);
    try {
      const planted = await plantRetained(b.url, {}, opts.retained, (i) => `pi-${Math.floor(i / 1000)}`);
      const before = b.rss();
      const held = await attackIdle('127.0.0.1', b.port, opts.idle);
      const probe = loginProbe(b.url, {}, 1000);
      // Past the connect timeout (30 s before the fix, 10 s after): when the issue saw the broker wedge.
      await sleep(opts.idleWaitMs);
      const login = await probe.stop();
      const after = timeLogin(b.url);
      const rss = b.rss();
      for (const s of held) s.destroy();
      const stillOpen = held.filter((s) => !s.destroyed).length;
      return {
        retained: planted,
        idle: opts.idle,
        before,
        rss,
        loginWorstMs: login.worstMs,
        loginAfterMs: (await after).ms,
        stillOpen,
        goal: 'logins < 2 s throughout',
      };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async takeover(cli) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const users = makeUsers(cli, dir, [
      ['pi-a', 'agent', 'pa'],
      ['ha', 'observer', 'ph'],
    ]);
    const b = await startBrokerProcess(cli, ['--users', users]);
    try {
      const agent = await mqtt.connectAsync(b.url, {
        clientId: 'replug-pi-a',
        username: 'pi-a',
        password: 'pa',
        reconnectPeriod: 0,
      });
      let kicked = 0;
      agent.on('close', () => kicked++);
      agent.on('error', () => undefined);
      let accepted = 0;
      for (let i = 0; i < 20; i++) {
        const r = await timeLogin(b.url, { clientId: 'replug-pi-a', username: 'ha', password: 'ph' });
        if (r.ok) accepted++;
        if (!agent.connected) agent.reconnect();
        await sleep(100);
      }
      agent.end(true);
      return { attempts: 20, accepted, agentKicked: kicked, goal: '0 accepted, 0 kicked' };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async anon(cli) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const users = makeUsers(cli, dir, [['pi-kitchen', 'agent', 'pk']]);
    const b = await startBrokerProcess(cli, ['--users', users]);
    try {
      const c = await mqtt
        .connectAsync(b.url, { reconnectPeriod: 0, protocolVersion: 4 })
        .catch(() => undefined);
      c?.on('error', () => undefined);
      c?.publish('replug/pi-kitchen/status', '{"state":"online","session":999,"ts":1}', {
        qos: 1,
        retain: true,
      });
      await sleep(500);
      c?.end(true);
      const stored = await countRetained(b.url, 'replug/pi-kitchen/status', {
        username: 'pi-kitchen',
        password: 'pk',
      });
      return { anonymousConnected: Boolean(c), forgedStatusStored: stored, goal: '0 stored' };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async retained(cli, opts) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const users = makeUsers(cli, dir, [['pi-a', 'agent', 'pa']]);
    const b = await startBrokerProcess(cli, ['--users', users, '--state-dir', dir]);
    try {
      const t0 = Date.now();
      const accepted = await plantRetained(
        b.url,
        { username: 'pi-a', password: 'pa', clientId: 'replug-pi-a' },
        opts.quotaTopics,
        () => 'pi-a',
      );
      const du = execFileSync('du', ['-sm', path.join(dir, 'broker.leveldb')])
        .toString()
        .split('\t')[0];
      return {
        attempted: opts.quotaTopics,
        accepted,
        leveldbMB: Number(du),
        seconds: Math.round((Date.now() - t0) / 1000),
        goal: 'accepted <= retained-topics (10,000)',
      };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async slow(cli, opts) {
    const b = await startBrokerProcess(cli);
    try {
      const readers = [];
      for (let i = 0; i < 3; i++) {
        const c = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 });
        c.on('error', () => undefined);
        let closed = false;
        c.on('close', () => (closed = true));
        await c.subscribeAsync('load/#');
        c.stream.pause();
        readers.push({ c, closed: () => closed });
      }
      const before = b.rss();
      const probe = loginProbe(b.url);
      const pub = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 });
      const payload = Buffer.alloc(64 * 1024);
      const t0 = Date.now();
      for (let sent = 0; sent < opts.slowMB * 16; sent++) {
        if (!pub.publish(`load/${sent}`, payload, { qos: 0 })) await sleep(0);
        if (sent % 64 === 0) await sleep(1);
      }
      await pub.publishAsync('load/end', 'e', { qos: 1 });
      let peak = b.rss();
      // A paused client does not see its socket close: count the broker's disconnects (before the fix, none
      // are logged; its only bound was aedes' 60 s drainTimeout, which closes without a line).
      const gone = () =>
        Math.max(
          readers.filter((r) => r.closed()).length,
          b.lines.filter((l) => /slow consumer/.test(l)).length,
        );
      while (Date.now() - t0 < 70_000 && gone() < 3) {
        await sleep(500);
        peak = Math.max(peak, b.rss());
      }
      const login = await probe.stop();
      const disconnected = gone();
      const secs = Math.round((Date.now() - t0) / 1000);
      for (const r of readers) r.c.end(true);
      pub.end(true);
      return {
        publishedMB: opts.slowMB,
        before,
        peak,
        disconnected,
        withinS: secs,
        loginWorstMs: login.worstMs,
        goal: '3 disconnected, RSS +<100 MB',
      };
    } finally {
      await b.stop();
    }
  },
  async guess(cli, opts) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    const users = makeUsers(cli, dir, [['pi-a', 'agent', 'pa']]);
    const b = await startBrokerProcess(cli, ['--users', users, '--host', '0.0.0.0']);
    try {
      const other = { username: 'pi-a', password: 'pa', localAddress: '127.0.0.2' };
      const quiet = await timeLogin(b.url, other);
      const probe = loginProbe(b.url, other);
      const g = await attackGuess(b.url, 'pi-a', 64, opts.guessMs);
      const login = await probe.stop();
      await sleep(500); // the broker's last log lines
      const warnLines = b.lines.filter((l) => /refused/.test(l)).length;
      return {
        ...g,
        loginQuietMs: quiet.ms,
        loginWorstMs: login.worstMs,
        warnLines,
        goal: 'guesses slowed, other source < 1 s',
      };
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  async nul(cli) {
    const b = await startBrokerProcess(cli);
    try {
      const c = await mqtt.connectAsync(b.url, { reconnectPeriod: 0, protocolVersion: 5 });
      const r = await c.publishAsync('replug/a\u0000b', 'x', { qos: 1 }).then(
        () => 'accepted',
        (e) => `refused 0x${e.code?.toString(16)}`,
      );
      c.end(true);
      return { publishWithNul: r, goal: 'refused' };
    } finally {
      await b.stop();
    }
  },
  async tls(cli) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    try {
      const { cert, key } = expiredCert(dir);
      const b = await startBrokerProcess(cli, ['--tls-cert', cert, '--tls-key', key]);
      await sleep(300);
      const warned = b.lines.filter((l) => /expired/.test(l)).length;
      await b.stop();
      return { expiredCertWarnings: warned, goal: '1' };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

function pick(o, ...keys) {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

async function attackMain([name, host, port, n]) {
  const p = Number(port);
  if (name === 'connect') {
    const a = await attackConnect(host, p, Number(n ?? 3), 200);
    console.log(JSON.stringify(pick(a, 'sockets', 'sentMB', 'closedByBroker')));
  } else if (name === 'guess') {
    console.log(JSON.stringify(await attackGuess(`mqtt://${host}:${p}`, 'pi-a', Number(n ?? 64), 8000)));
  } else if (name === 'anon') {
    const r = await timeLogin(`mqtt://${host}:${p}`, { protocolVersion: 5 });
    console.log(JSON.stringify({ connected: r.ok === true }));
  } else throw new Error(`unknown attack ${name}`);
  process.exit(0);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'attack') return attackMain(argv.slice(1));
  const get = (flag, dflt) => {
    const i = argv.indexOf(`--${flag}`);
    return i < 0 ? dflt : argv[i + 1];
  };
  const cli = path.resolve(get('cli', path.join(ROOT, 'dist/src/bin/replug.js')));
  const only = get('only', Object.keys(SCENARIOS).join(',')).split(',');
  const opts = {
    retained: Number(get('retained', 200_000)),
    idle: Number(get('idle', 3000)),
    idleWaitMs: Number(get('idle-wait-ms', 40_000)),
    quotaTopics: Number(get('quota-topics', 30_000)),
    slowMB: Number(get('slow-mb', 300)),
    guessMs: Number(get('guess-ms', 10_000)),
  };
  console.log(`replug broker under the issue 11 attacks (${path.relative(process.cwd(), cli)})`);
  for (const name of only) {
    const t0 = Date.now();
    const fig = await SCENARIOS[name](cli, opts).catch((err) => ({ error: String(err?.message ?? err) }));
    console.log(`${name.padEnd(9)} ${JSON.stringify(fig)} (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
