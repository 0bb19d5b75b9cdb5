/**
 * `p` and `R` in the real terminal view (issue 18): `replug watch` in tmux against the embedded broker of a
 * real agent with --commands on a fake USB tree. `p` republishes and the answer reaches the status line;
 * `R` asks first, then the agent (no recovery ladder here) answers with a stable error code, shown as is.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../../src/agent/agent.js';
import { loadAgentConfig } from '../../../src/config/agent.js';
import { systemClock } from '../../../src/util/clock.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { CLI_PATH, DEVNODE_DRIVER, ensureBuilt } from '../../helpers/agent-process.js';
import { requireTmux, Tmux } from './tmux.js';

const enabled = requireTmux();

describe.skipIf(!enabled)('replug watch keys that send requests (tmux, real agent)', () => {
  let dir: string;
  let tree: FakeUsbTree;
  let agent: RunningAgent;

  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-view-req-'));
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1' });
    const config = loadAgentConfig(
      [
        ...['--id', 'key-pi', '--broker-port', '0', '--state-dir', join(dir, 'state'), '--commands'],
        ...['--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot],
        ...['--target', '1209:0001', '--driver', DEVNODE_DRIVER],
      ],
      {},
      { hostname: 'ignored' },
    );
    agent = await startAgent(config, {
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
    await agent.publisher.connected();
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    await tree?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('p shows the republish answer, R asks then shows the reset answer, in list and detail', async () => {
    const tmux = new Tmux(120, 24);
    tmux.start(`node ${CLI_PATH} watch --mqtt ${agent.brokerUrl} --no-color; echo "EXIT=$?"; sleep 600`);
    try {
      await tmux.until((s) => s.includes('key-pi') && s.includes('1209:0001'), 'the agent and its target');
      const status = (s: string) => s.split('\n').at(-1) ?? '';
      tmux.literal('p');
      let screen = await tmux.until((s) => /republish key-pi: ok/.test(status(s)), 'the republish answer');
      expect(status(screen)).toMatch(/^republish key-pi: ok, \d+ topics$/);
      // The view kept running while it asked: the next key clears the notice back to the key help.
      tmux.keys('Down');
      screen = await tmux.until((s) => status(s).includes('p republish'), 'the key help back');

      tmux.literal('R');
      screen = await tmux.until((s) => status(s).includes('? R or y'), 'the reset confirmation');
      expect(status(screen)).toMatch(/^reset key-pi 1209:0001\? R or y sends it/);
      tmux.literal('y');
      screen = await tmux.until((s) => /reset key-pi 1209:0001: error/.test(status(s)), 'the reset answer');
      // No --heal on this agent: its stable code, shown as it answered.
      expect(status(screen)).toMatch(
        /^reset key-pi 1209:0001: error REPLUG_HEAL_UNAVAILABLE this agent runs no recovery ladder/,
      );

      // In the detail pane, on the agent it shows.
      tmux.keys('Enter');
      await tmux.until((s) => s.includes('agent key-pi on'), 'the detail pane');
      tmux.literal('p');
      screen = await tmux.until((s) => /republish key-pi: ok/.test(status(s)), 'republish from the pane');
      expect(screen).toContain('agent key-pi on');
      tmux.literal('q');
      await tmux.until((s) => s.includes('EXIT=0'), 'a clean exit');
    } finally {
      tmux.kill();
    }
  }, 60_000);
});
