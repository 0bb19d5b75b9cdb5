/**
 * Issue 11's "done when": the attacks replayed against the real `replug broker` CLI, bounded in count and
 * time, from loopback and from a network namespace this suite makes (a veth pair: the attacks come from
 * another address, where anonymous logins are refused). Throughout, the broker's RSS stays under a stated
 * bound and a legitimate client connects within a stated time. Both bounds are wide (several times what
 * the fixed broker shows, far below what main showed; bench/abuse.mjs prints the figures): they catch a
 * broker that buffers or wedges again, and are not speed goals.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Plain JS shared with bench/abuse.mjs (no declaration file): the attacks are the bench's.
// @ts-expect-error bench/abuse.mjs has no declaration file
import * as abuse from '../../../bench/abuse.mjs';
import { ensureBuilt, REPO_ROOT } from '../../helpers/agent-process.js';

/** RSS growth the broker may show under any one attack (main: +310 MB for the CONNECT flood alone). */
const RSS_GROWTH_BOUND_MIB = 120;
/** The longest a legitimate login may take during an attack (main: 15 s under 64 guessers). */
const LOGIN_BOUND_MS = 5000;

interface Broker {
  port: number;
  url: string;
  lines: string[];
  rss(): number;
  stop(): Promise<void>;
}
interface Probe {
  stop(): Promise<{ worstMs: number; count: number }>;
}
const a = abuse as {
  startBrokerProcess(cli: string, args: string[]): Promise<Broker>;
  loginProbe(url: string, options?: object, everyMs?: number): Probe;
  timeLogin(url: string, options?: object): Promise<{ ms: number; ok?: boolean }>;
  attackIdle(host: string, port: number, n: number): Promise<Array<{ destroy(): void }>>;
  plantRetained(url: string, o: object, n: number, root: (i: number) => string): Promise<number>;
  makeUsers(cli: string, dir: string, users: string[][]): string;
  sleep(ms: number): Promise<void>;
};

const isRoot = process.getuid?.() === 0;
const hasIp = spawnSync('ip', ['-V']).status === 0;
const ready = isRoot && hasIp;
if (!ready) {
  const why = 'broker abuse suite (test/broker/abuse): needs root and iproute2 (ip netns)';
  if (process.env.CI === 'true') throw new Error(`${why}; CI=true forbids skipping`);
  process.stderr.write(`\n!!! SKIPPING ${why}\n\n`);
}

const NS = `replug-abuse-${process.pid}`;
const octet = 16 + (process.pid % 200);
const HOST_IP = `10.211.${octet}.1`;
const NS_IP = `10.211.${octet}.2`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

function makeNamespace(): void {
  const host = `rpa${process.pid % 100000}h`;
  ip('netns', 'add', NS);
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'rpa-ns', 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', host);
  ip('link', 'set', host, 'up');
  ip('-n', NS, 'addr', 'add', `${NS_IP}/30`, 'dev', 'rpa-ns');
  ip('-n', NS, 'link', 'set', 'rpa-ns', 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
}

/** Runs one attack's client side inside the namespace; resolves with its JSON line. */
function fromNamespace(attack: string, port: number, n: number): Promise<Record<string, unknown>> {
  const bench = path.join(REPO_ROOT, 'bench', 'abuse.mjs');
  const child = spawn(
    'ip',
    ['netns', 'exec', NS, process.execPath, bench, 'attack', attack, HOST_IP, String(port), String(n)],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}'))
        : reject(new Error(`attack ${attack} exited ${code}`)),
    );
  });
}

describe.runIf(ready)('replug broker under the issue 11 attacks', () => {
  let cli: string;
  let dir: string;
  let broker: Broker;
  beforeAll(async () => {
    cli = await ensureBuilt();
    dir = mkdtempSync(path.join(os.tmpdir(), 'replug-abuse-'));
    makeNamespace();
    const users = a.makeUsers(cli, dir, [
      ['pi-a', 'agent', 'pa'],
      ['ha', 'observer', 'ph'],
    ]);
    broker = await a.startBrokerProcess(cli, ['--host', '0.0.0.0', '--users', users, '--state-dir', dir]);
  }, 240_000);
  afterAll(async () => {
    await broker?.stop();
    spawnSync('ip', ['netns', 'del', NS]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs an attack with a login probe and RSS sampling beside it. */
  async function throughout<T>(attack: () => Promise<T>, login: object = { username: 'ha', password: 'ph' }) {
    const base = broker.rss();
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, broker.rss());
    }, 100);
    const probe = a.loginProbe(broker.url, login, 300);
    try {
      const result = await attack();
      return { result, growth: peak - base, login: await probe.stop() };
    } finally {
      clearInterval(sampler);
    }
  }

  it('3 sockets from another address announcing 268 MB CONNECTs are closed at their header', async () => {
    const { result, growth, login } = await throughout(() => fromNamespace('connect', broker.port, 3));
    expect(result).toMatchObject({ sockets: 3, closedByBroker: 3 });
    expect(growth).toBeLessThan(RSS_GROWTH_BOUND_MIB);
    expect(login.worstMs).toBeLessThan(LOGIN_BOUND_MS);
  }, 60_000);

  it('an anonymous client from another address is refused', async () => {
    expect(await fromNamespace('anon', broker.port, 1)).toEqual({ connected: false });
  }, 30_000);

  it('32 parallel password guessers from another address: a login from loopback stays within the bound', async () => {
    const { result, login } = await throughout(() => fromNamespace('guess', broker.port, 32), {
      username: 'pi-a',
      password: 'pa',
      clientId: 'replug-pi-a',
    });
    expect(result.attempts).toBeGreaterThan(0);
    expect(login.worstMs).toBeLessThan(LOGIN_BOUND_MS);
    // One refusal line per source and window, not one per guess.
    expect(broker.lines.filter((l) => l.includes(`from ${NS_IP}`)).length).toBeLessThanOrEqual(2);
  }, 60_000);

  it('1,000 idle sockets beside 9,000 retained topics: logins keep coming through', async () => {
    // Under one agent's root and within its retained quota (10,000), as the agent itself could.
    const agent = { username: 'pi-a', password: 'pa', clientId: 'replug-pi-a' };
    expect(await a.plantRetained(broker.url, agent, 9000, () => 'pi-a')).toBe(9000);
    const { growth, login } = await throughout(async () => {
      const held = await a.attackIdle('127.0.0.1', broker.port, 1000);
      await a.sleep(3000);
      for (const s of held) s.destroy();
    });
    expect(growth).toBeLessThan(RSS_GROWTH_BOUND_MIB);
    expect(login.worstMs).toBeLessThan(LOGIN_BOUND_MS);
    expect(login.count).toBeGreaterThan(1);
  }, 120_000);
});
