/**
 * Feature `health-file` (issue 16): the heartbeat deploy/docker/healthcheck.mjs reads. A real agent on a
 * fake tree writes <state-dir>/health.json at start and rewrites it every --health-interval; a failing
 * disk is logged once and never stops the agent; without a state dir nothing is written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../../src/agent/agent.js';
import { Bus } from '../../../src/agent/bus.js';
import { HEALTH_FILE, type HealthFileFs, healthFile } from '../../../src/agent/features/health-file.js';
import { type AgentParts, startFeatures } from '../../../src/agent/features.js';
import { Stopper } from '../../../src/agent/stopper.js';
import { loadAgentConfig } from '../../../src/config/agent.js';
import { systemClock } from '../../../src/util/clock.js';
import { repoRoot } from '../../deploy/support.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';

type Line = { level: number; msg: string };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000) {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const readJson = async (p: string) => {
  try {
    return JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

let tree: FakeUsbTree;
let stateDir: string;
let agent: RunningAgent | undefined;
let lines: Line[];
beforeEach(async () => {
  tree = await FakeUsbTree.create();
  stateDir = await mkdtemp(join(tmpdir(), 'replug-health-file-'));
  lines = [];
});
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  await tree.cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

async function start(extra: string[]): Promise<RunningAgent> {
  const config = loadAgentConfig(
    [
      '--id',
      'hb-pi',
      '--sysfs-root',
      tree.sysfsRoot,
      '--devfs-root',
      tree.devfsRoot,
      '--broker-port',
      '0',
      ...extra,
    ],
    {},
    { hostname: 'ignored' },
  );
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  agent = await startAgent(config, {
    clock: systemClock,
    log,
    env: {},
    hostname: 'test-host',
    homedir: stateDir,
    version: '0.0.0-test',
    cwd: process.cwd(),
    runRoot: join(stateDir, 'run'),
    rootDir: stateDir,
  });
  return agent;
}

describe('health-file', () => {
  it('writes <state-dir>/health.json at start and rewrites it every --health-interval', async () => {
    await start(['--state-dir', stateDir, '--health-interval', '1000']);
    const path = join(stateDir, HEALTH_FILE);
    const first = await until('health.json', () => readJson(path));
    expect(first).toMatchObject({ agent: 'hb-pi', pid: process.pid });
    expect(first.writtenAt).toEqual(expect.any(String));
    const second = await until('a rewritten health.json', async () => {
      const j = await readJson(path);
      return j && j.writtenAt !== first.writtenAt ? j : undefined;
    });
    expect(Date.parse(second.writtenAt as string)).toBeGreaterThan(Date.parse(first.writtenAt as string));
  });

  it('is what the image HEALTHCHECK reads: healthy while fresh, unhealthy once stale', async () => {
    await start(['--state-dir', stateDir, '--health-interval', '1000']);
    await until('health.json', () => readJson(join(stateDir, HEALTH_FILE)));
    // The real probe, pointed at a stand-in process named `replug` with this state dir and an external
    // broker (so only the process and the heartbeat are checked, not a port).
    const dir = await mkdtemp(join(tmpdir(), 'replug-hb-proc-'));
    const fake = join(dir, 'replug');
    await writeFile(fake, 'setInterval(() => {}, 1000);');
    const child = spawn(process.execPath, [
      fake,
      'agent',
      '--state-dir',
      stateDir,
      '--mqtt',
      'mqtt://x:1883',
    ]);
    try {
      const probe = (maxAgeMs: string) =>
        spawnSync(process.execPath, [join(repoRoot, 'deploy/docker/healthcheck.mjs')], {
          env: {
            PATH: process.env.PATH,
            REPLUG_HEALTH_PID: String(child.pid),
            REPLUG_HEALTH_MAX_AGE_MS: maxAgeMs,
          },
          encoding: 'utf8',
        });
      await until('the stand-in', () =>
        readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes('agent') ? true : undefined,
      );
      expect(probe('120000')).toMatchObject({ status: 0, stdout: 'healthy\n' });
      // Rewritten every second, so it is more than 5 ms old most of the time: wait for such a moment.
      const stale = await until('a heartbeat older than 5 ms', () => {
        const r = probe('5');
        return r.status === 1 ? r : undefined;
      });
      expect(stale.stderr).toMatch(/unhealthy: heartbeat .*health\.json is \d+ s old/);
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes nothing without a state dir', () => {
    const feature = healthFile()();
    const config = loadAgentConfig(['--id', 'hb-pi'], {}, { hostname: 'x' });
    expect(config.stateDir).toBeUndefined();
    expect(feature.enabled?.(config)).toBe(false);
  });

  it('logs a failing write once, keeps ticking, and says when it works again', async () => {
    let fail = true;
    let failures = 0;
    const writes: string[] = [];
    const fs: HealthFileFs = {
      mkdir: async () => undefined,
      writeFile: async (p: string, data: string) => {
        if (fail && ++failures)
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        writes.push(`${p}:${data.length}`);
      },
      rename: async () => undefined,
    };
    const config = loadAgentConfig(
      ['--id', 'hb-pi', '--state-dir', stateDir, '--health-interval', '1000'],
      {},
      {
        hostname: 'x',
      },
    );
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const stopper = new Stopper(systemClock, log, 5000);
    const parts = {
      config,
      identity: { agent: 'hb-pi', session: 1, version: '0', hostname: 'x' },
      clock: systemClock,
      bus: new Bus(log),
      watcher: { stats: () => ({}) },
      reports: {},
      startedAt: systemClock.monotonic(),
      log,
    };
    await startFeatures([healthFile(fs)], parts as unknown as AgentParts, stopper);
    try {
      await until('a warning', () =>
        lines.some((l) => l.level === 40 && /cannot write/.test(l.msg)) ? true : undefined,
      );
      // Two more failing beats (one a second): still one warning.
      await until('three failed writes', () => (failures >= 3 ? true : undefined));
      expect(lines.filter((l) => /cannot write/.test(l.msg))).toHaveLength(1);
      fail = false;
      await until('written again', () =>
        lines.some((l) => /is written again/.test(l.msg)) ? true : undefined,
      );
      expect(writes[0]).toMatch(/health\.json\.\d+\.tmp:\d+/);
    } finally {
      await stopper.stop();
    }
  });
});
