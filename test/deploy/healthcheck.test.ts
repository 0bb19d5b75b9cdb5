/**
 * deploy/docker/healthcheck.mjs (the image's HEALTHCHECK and the DaemonSet's liveness probe), run against
 * stand-in replug processes: a node script named `replug` that listens where the real agent would.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, repoRoot } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'replug-health-'));
const fakeReplug = join(dir, 'replug');
// Listens on --broker-port/--port when given LISTEN=1, else just stays alive.
writeFileSync(
  fakeReplug,
  `const net = require('node:net');
   const i = process.argv.findIndex((a) => a === '--broker-port' || a === '--port');
   if (process.env.LISTEN === '1') net.createServer((s) => s.end()).listen(Number(process.argv[i + 1]), '127.0.0.1', () => console.log('ready'));
   else console.log('ready');
   setInterval(() => {}, 1000);`,
);

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function startReplug(args: string[], env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fakeReplug, ...args], { env: { PATH: process.env.PATH, ...env } });
  children.push(child);
  await new Promise((resolve) => child.stdout?.once('data', resolve));
  return child;
}

function probe(pid: number | undefined, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'deploy/docker/healthcheck.mjs')], {
    env: { PATH: process.env.PATH, REPLUG_HEALTH_PID: String(pid), ...env },
    encoding: 'utf8',
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

describe('deploy/docker/healthcheck.mjs', () => {
  it('is healthy while the agent serves its embedded broker', async () => {
    const port = await freePort();
    const agent = await startReplug(['agent', '--broker-port', String(port)], { LISTEN: '1' });
    expect(probe(agent.pid)).toEqual({ code: 0, out: 'healthy' });
  });

  it('is unhealthy when the embedded broker port refuses connections', async () => {
    const port = await freePort();
    const agent = await startReplug(['agent'], { REPLUG_BROKER_PORT: String(port) });
    const result = probe(agent.pid);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(new RegExp(`broker port 127\\.0\\.0\\.1:${port} refuses`));
  });

  it('only needs the process when the agent publishes to an external broker', async () => {
    const agent = await startReplug(['agent'], { REPLUG_MQTT_URL: 'mqtt://broker:1883' });
    expect(probe(agent.pid)).toEqual({ code: 0, out: 'healthy' });
  });

  it('checks `replug broker` on its --port', async () => {
    const port = await freePort();
    const broker = await startReplug(['broker', '--host', '0.0.0.0', '--port', String(port)], {
      LISTEN: '1',
    });
    expect(probe(broker.pid).code).toBe(0);
  });

  it('honours a heartbeat file in the state dir when the agent writes one', async () => {
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { recursive: true });
    const agent = await startReplug(['agent', '--mqtt', 'mqtt://x', '--state-dir', stateDir]);
    writeFileSync(join(stateDir, 'health.json'), '{}');
    expect(probe(agent.pid).code).toBe(0);
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(join(stateDir, 'health.json'), old, old);
    const result = probe(agent.pid);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/heartbeat .*health\.json is \d+ s old/);
  });

  it('is unhealthy without a replug process', async () => {
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.push(other);
    expect(probe(other.pid)).toEqual({ code: 1, out: 'unhealthy: no replug process found' });
  });
});
