/**
 * The actions feature in the agent, on a fake tree with a real embedded broker: --restart-container is sent
 * to an engine socket when the target comes back after a replug (not on the run's first up), and --on-down
 * runs with the facts of the device that went. The engine here is a plain HTTP server on a unix socket that
 * records requests; the client itself is tested against a real dockerd in test/docker.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/agent.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';

let tree: FakeUsbTree;
let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  tree = await FakeUsbTree.create();
  dir = await mkdtemp(join(tmpdir(), 'replug-actions-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await tree.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function until<T>(what: string, fn: () => T | undefined | false, ms = 15_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('actions in the agent', () => {
  it('restarts the container when the target comes back after a replug, and runs --on-down with its facts', async () => {
    const sock = join(dir, 'engine.sock');
    const requests: string[] = [];
    const server: Server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.statusCode = req.url === '/_ping' ? 200 : 204;
      res.end(req.url === '/_ping' ? 'OK' : '');
    });
    await new Promise<void>((r) => server.listen(sock, r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const down = join(dir, 'down.txt');
    await tree.plug({ vid: '10c4', pid: 'ea60', portPath: '1-2', serial: 'Z1' });
    const config = loadAgentConfig(
      [
        '--id',
        'act-pi',
        '--sysfs-root',
        tree.sysfsRoot,
        '--devfs-root',
        tree.devfsRoot,
        '--state-dir',
        dir,
        '--sources',
        'sysfs',
        '--rescan-interval',
        '100',
        '--broker-port',
        '0',
        '--driver',
        join(import.meta.dirname, '..', 'agent', 'fixtures', 'options-driver.mjs'),
        '--docker-socket',
        sock,
        '--target',
        '10c4:ea60',
        '--restart-container',
        'zigbee2mqtt',
        '--on-down',
        `echo "$REPLUG_EVENT $REPLUG_SERIAL $REPLUG_PORT" >> ${down}`,
      ],
      {},
      { hostname: 'ignored' },
    );
    const agent = await startAgent(config, {
      clock: systemClock,
      log: pino({ level: 'silent' }),
      env: {},
      hostname: 'h',
      homedir: dir,
      version: '0.0.0-test',
      cwd: process.cwd(),
      runRoot: join(dir, 'run'),
      rootDir: dir,
    });
    cleanups.push(() => agent.stop());
    expect(agent.features).toContain('actions');
    await until('first up', () => agent.sessions.get('10c4:ea60')?.state === 'up');
    expect(requests).toEqual(['GET /_ping']);
    await tree.unplug('1-2');
    await until('on-down ran', () => {
      try {
        return readFileSync(down, 'utf8') === 'down Z1 1-2\n';
      } catch {
        return false;
      }
    });
    await tree.plug({ vid: '10c4', pid: 'ea60', portPath: '1-2', serial: 'Z1' });
    await until('restart', () => requests.includes('POST /containers/zigbee2mqtt/restart?t=10'));
    expect(requests.filter((r) => r.startsWith('POST'))).toHaveLength(1);
  }, 30_000);
});
