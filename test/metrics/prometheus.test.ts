/**
 * Prometheus scrapes both endpoints (issue 19): `replug agent --metrics` on a fake USB tree and
 * `replug watch --metrics` over a real broker with simulated agents. The text passes `promtool check
 * metrics`; a real Prometheus server (Debian's, its own config and storage in a temp dir, a free loopback
 * port) scrapes both and answers PromQL for a reconnect this test caused by replugging on the fake tree.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { type FleetSim, publishFleet } from '../fleet/view/fleet-sim.js';
import {
  type AgentProcess,
  DEVNODE_DRIVER,
  ensureBuilt,
  spawnAgent,
  spawnCli,
} from '../helpers/agent-process.js';

function have(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
}
const ready = have('prometheus') && have('promtool');
if (!ready) {
  if (process.env.CI === 'true')
    throw new Error('prometheus/promtool missing (apt-get install -y prometheus)');
  console.warn(
    '\n!!! prometheus not installed: the metrics suite is SKIPPED (apt-get install -y prometheus)\n',
  );
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!ready)('Prometheus scrapes replug agent and replug watch', () => {
  let broker: RunningBroker;
  let fleet: FleetSim;
  let tree: FakeUsbTree;
  let dir: string;
  let agent: AgentProcess;
  let watch: AgentProcess;
  let prom: ChildProcess | undefined;
  let agentUrl: string;
  let watchUrl: string;
  let device: Awaited<ReturnType<FakeUsbTree['plug']>>;

  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-metrics-'));
    broker = await startBroker({ port: 0 });
    fleet = await publishFleet(broker.url, 5, Date.now());
    tree = await FakeUsbTree.create();
    agent = spawnAgent({
      id: 'lab-1',
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      stateDir: join(dir, 'state'),
      mqtt: broker.url,
      extra: [
        '--settle',
        '100',
        '--target',
        '1209:0001',
        '--driver',
        DEVNODE_DRIVER,
        '--metrics',
        '127.0.0.1:0',
      ],
    });
    const line = await agent.waitForLog(
      (l) => /^metrics on /.test(l.msg),
      20_000,
      'the agent metrics endpoint',
    );
    agentUrl = String(line.url);
    watch = spawnCli(['watch', '--mqtt', broker.url, '--json', '--metrics', '127.0.0.1:0']);
    watchUrl = await until(
      'the watch metrics endpoint',
      async () => /metrics on (\S+)/.exec(watch.stderr())?.[1],
    );
  }, 240_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await agent?.stop?.();
    watch?.kill('SIGTERM');
    await fleet?.close();
    await broker?.close();
    await tree?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves text that promtool accepts, with the documented names and labels', async () => {
    device = await tree.plug({ vid: '1209', pid: '0001', serial: 'M1' });
    const agentText = await until('the agent session up', async () => {
      const t = await (await fetch(agentUrl)).text();
      return /replug_target_session_state\{[^}]*state="up"[^}]*\} 1/.test(t) ? t : undefined;
    });
    const watchText = await until('the fleet in the watcher', async () => {
      const t = await (await fetch(watchUrl)).text();
      return t.includes('agent="pi-005"') && t.includes('agent="lab-1"') ? t : undefined;
    });
    for (const text of [agentText, watchText]) {
      const r = promtool(text);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
      for (const name of [
        'replug_agent_up',
        'replug_target_session_state',
        'replug_target_reconnects_total',
        'replug_reconnect_duration_seconds',
        'replug_heal_steps_total',
        'replug_detection_latency_seconds',
        'replug_detection_misses_total',
        'replug_queue_depth',
        'replug_queue_dropped_total',
        'replug_broker_connected',
      ])
        expect(text).toContain(`# TYPE ${name} `);
    }
    expect(agentText).toMatch(/replug_agent_up\{agent="lab-1",runtime="native"\} 1/);
    expect(watchText).toMatch(/replug_watch_broker_up\{broker="mqtt:\/\/127\.0\.0\.1:\d+"\} 1/);
    // A bad path is a 404, not the metrics.
    expect((await fetch(agentUrl.replace('/metrics', '/nope'))).status).toBe(404);
  }, 60_000);

  it('a Prometheus server scrapes both and answers PromQL for a reconnect the test caused', async () => {
    const port = await freePort();
    const target = (u: string) => new URL(u).host;
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: agent\n    static_configs: [{targets: ['${target(agentUrl)}']}]\n  - job_name: watch\n    static_configs: [{targets: ['${target(watchUrl)}']}]\n`,
    );
    prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    // A replug on the fake tree: the session goes down and reconnects (reconnect.succeeded, observed).
    const count = async () => {
      const t = await (await fetch(agentUrl)).text();
      const all = [...t.matchAll(/replug_reconnect_duration_seconds_count\{[^}]*\} (\d+)/g)];
      return all.reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const before = await count();
    await tree.unplug(device);
    // Plugged back only once the agent saw it gone: a replug inside the settle window is no replug.
    await until('the session down', async () =>
      /replug_target_session_state\{[^}]*state="up"[^}]*\} 0/.test(await (await fetch(agentUrl)).text())
        ? true
        : undefined,
    );
    await tree.plug({ vid: '1209', pid: '0001', serial: 'M1' });
    await until('the reconnect on the agent endpoint', async () =>
      (await count()) > before ? true : undefined,
    ).catch(async (e) => {
      throw new Error(
        `${e}; before ${before}; now ${await (await fetch(agentUrl)).text()}; agent: ${agent.transcript()}`,
      );
    });
    const query = async (q: string) => {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      return body.data.result;
    };
    const fromAgent = await until(
      'PromQL on the agent job',
      async () => {
        const r = await query('sum(replug_reconnect_duration_seconds_count{job="agent",agent="lab-1"})');
        return Number(r[0]?.value[1] ?? 0) > before ? r : undefined;
      },
      60_000,
    );
    expect(Number(fromAgent[0]?.value[1])).toBeGreaterThan(before);
    // The watcher sees the same agent over MQTT and exports it under the same names.
    const fromWatch = await until(
      'PromQL on the watch job',
      async () => {
        const r = await query('sum(replug_reconnect_duration_seconds_count{job="watch",agent="lab-1"})');
        return Number(r[0]?.value[1] ?? 0) >= 1 ? r : undefined;
      },
      60_000,
    );
    expect(Number(fromWatch[0]?.value[1])).toBeGreaterThanOrEqual(1);
    const up = await query('count(replug_agent_up{job="watch"} == 1)');
    expect(Number(up[0]?.value[1])).toBe(6); // pi-001..005 (every 10th is offline) and lab-1
  }, 120_000);
});
