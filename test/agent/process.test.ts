/**
 * `replug agent` as a process when something throws where nobody catches it (issue 12): it logs the
 * exception, stops (offline published, sessions closed) and exits 1, so systemd or Docker restarts it,
 * instead of carrying on in a state nobody knows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STOP_BOUND_MS } from '../../src/config/agent.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { type AgentProcess, ensureBuilt, spawnAgent } from '../helpers/agent-process.js';

const DRIVER = fileURLToPath(new URL('./fixtures/throwing-driver.mjs', import.meta.url));

describe('replug agent: an uncaught exception', () => {
  let tree: FakeUsbTree;
  let stateDir: string;
  let proc: AgentProcess | undefined;
  beforeAll(async () => {
    await ensureBuilt();
  }, 240_000);
  beforeEach(async () => {
    tree = await FakeUsbTree.create();
    stateDir = await mkdtemp(join(tmpdir(), 'replug-uncaught-'));
  });
  afterEach(async () => {
    proc?.kill('SIGKILL');
    await proc?.exited().catch(() => undefined);
    await tree.cleanup();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('is logged, the agent stops cleanly and exits 1 within the stop bound', async () => {
    proc = spawnAgent({
      id: 'uncaught',
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      stateDir,
      extra: ['--target', '1209:0001', '--driver', DRIVER],
    });
    await proc.waitForLog((l) => /^agent uncaught started/.test(l.msg), 15_000, 'agent started');
    const status = await proc.exited(STOP_BOUND_MS + 5000);
    expect(status).toEqual({ code: 1, signal: null });
    const crash = proc.messages(/^uncaught exception: the agent stops and exits 1/);
    expect(crash).toHaveLength(1);
    expect(JSON.stringify(crash[0]?.err)).toContain('a bug in a dependency');
    expect(proc.messages(/^stopped$/)).toHaveLength(1);
  }, 40_000);
});
