/**
 * The interactive view in a real terminal (issue 19): `replug watch` in tmux at 80×24 and 160×50 against a
 * real broker carrying 100 simulated agents. Screens are compared with fixtures in fixtures/ (the broker's
 * port normalised; UPDATE_FIXTURES=1 rewrites them), and every key is exercised: arrows, PgUp/PgDn,
 * Home/End, `/` filter, `s` sort, Enter detail, Esc, `q` (the terminal back in cooked mode, normal screen).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../../src/broker/broker.js';
import { CLI_PATH, ensureBuilt } from '../../helpers/agent-process.js';
import { agentName, type FleetSim, publishFleet } from './fleet-sim.js';
import { requireTmux, Tmux } from './tmux.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const enabled = requireTmux();

function normalise(screen: string, port: number): string {
  return (
    screen
      .replaceAll(`127.0.0.1:${port}`, '127.0.0.1:PORT')
      // When the watcher received the agent's last message: the one age that is not from a payload.
      .replace(/seen (now|\d+s ago)/g, 'seen Ns ago')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n')
      .trimEnd()
  );
}

/**
 * The screen once what the watch shows has stopped changing for 1.5 s (its normalised text): a predicate
 * can hold while the last retained messages and replug events are still arriving, and a fixture taken then
 * records a partial count (seen under load: 11 targets down and 416 msgs instead of 13 and 509).
 */
async function steady(tmux: Tmux, port: number, first: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  let last = normalise(first, port);
  let screen = first;
  let since = Date.now();
  while (Date.now() - since < 1500) {
    if (Date.now() > deadline) throw new Error(`the screen never settled:\n${screen}`);
    await new Promise((r) => setTimeout(r, 100));
    screen = tmux.capture();
    const now = normalise(screen, port);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return screen;
}

function fixture(name: string, screen: string): void {
  const file = join(FIXTURES, `${name}.txt`);
  if (process.env.UPDATE_FIXTURES === '1' || !existsSync(file)) {
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(file, `${screen}\n`);
  }
  expect(screen).toBe(readFileSync(file, 'utf8').trimEnd());
}

describe.skipIf(!enabled)('replug watch in a real terminal (tmux)', () => {
  let broker: RunningBroker;
  let fleet: FleetSim;
  let dir: string;
  const now = Date.now();

  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-view-'));
    broker = await startBroker({ port: 0 });
    fleet = await publishFleet(broker.url, 100, now);
    // Three replugs the view sees live: their downtime goes to LAST DOWN, their events to the detail pane.
    for (const i of [1, 2, 3]) await fleet.replug(agentName(i), 1200 * i, 300 * i);
  }, 240_000);

  afterAll(async () => {
    await fleet?.close();
    await broker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = (cols: number, rows: number) => {
    const tmux = new Tmux(cols, rows);
    const stty = join(dir, `stty-${cols}`);
    tmux.start(
      `node ${CLI_PATH} watch --mqtt ${broker.url} --no-color --stale-after 1000; echo "EXIT=$?"; stty -a > ${stty}; sleep 600`,
    );
    return { tmux, stty };
  };
  const port = () => broker.address.port;

  it('80×24: header and status stay, rows scroll, keys work, q restores the terminal', async () => {
    const { tmux, stty } = start(80, 24);
    try {
      let screen = await tmux.until((s) => s.includes('100 agents') && s.includes('pi-001'), '100 agents');
      // Live events are not retained: the replugs above were before this watch; send them again.
      for (const i of [1, 2, 3]) await fleet.replug(agentName(i), 1200 * i, 300 * i);
      screen = await tmux.until((s) => s.includes('1.2s') && s.includes('2.4s'), 'the replug downtimes');
      screen = await steady(tmux, port(), screen);
      const lines = screen.split('\n');
      expect(lines).toHaveLength(24);
      expect(lines[0]).toMatch(/^replug watch · 100 agents · 90 online · 10 offline/);
      expect(lines[23]).toMatch(/^1-20 of 100 · sort agent/);
      fixture('80x24-top', normalise(screen, port()));

      tmux.keys('Down', 'Down', 'Down');
      screen = await tmux.until((s) => s.includes('▶ pi-004'), 'the cursor on pi-004');
      tmux.keys('PageDown');
      screen = await tmux.until((s) => s.includes('▶ pi-024'), 'a page down');
      expect(screen).toMatch(/5-24 of 100/);
      expect(screen.split('\n')[0]).toMatch(/^replug watch · 100 agents/); // the header did not scroll away
      tmux.keys('End');
      screen = await tmux.until((s) => s.includes('▶ pi-100'), 'End');
      expect(screen).toMatch(/81-100 of 100/);
      fixture('80x24-end', normalise(screen, port()));
      tmux.keys('PageUp');
      await tmux.until((s) => s.includes('▶ pi-080'), 'a page up');
      tmux.keys('Home');
      await tmux.until((s) => s.includes('▶ pi-001') && /1-20 of 100/.test(s), 'Home');

      tmux.literal('/pi-07');
      screen = await tmux.until((s) => s.includes('/pi-07█'), 'the filter prompt');
      expect(screen).toContain('pi-070');
      expect(screen).not.toContain('pi-001');
      tmux.keys('Enter');
      screen = await tmux.until(
        (s) => s.includes('filter "pi-07"') && s.includes('1-10 of 10'),
        'the filter kept',
      );
      fixture('80x24-filter', normalise(screen, port()));
      tmux.keys('Escape');
      await tmux.until((s) => s.includes('1-20 of 100'), 'the filter cleared');

      // A new sort keeps the selected agent on screen; Home goes to the top of the new order.
      tmux.literal('s');
      tmux.keys('Home');
      screen = await tmux.until((s) => s.includes('sort state') && s.includes('1-20 of'), 'sort by state');
      // Offline agents first.
      expect(screen.split('\n')[3]).toMatch(/pi-010 +offline/);
      tmux.literal('s');
      await tmux.until((s) => s.includes('sort last event'), 'sort by last event');
      tmux.literal('s');
      tmux.keys('Home');
      screen = await tmux.until(
        (s) => s.includes('sort reconnect p95') && s.includes('1-20 of'),
        'sort by p95',
      );
      expect(screen.split('\n')[3]).toMatch(/pi-003/); // 900 ms, the slowest reconnect seen
      tmux.literal('s');
      await tmux.until((s) => s.includes('sort agent'), 'back to sort by agent');

      tmux.keys('Home', 'Enter');
      screen = await tmux.until((s) => s.includes('agent pi-001 on'), 'the detail pane');
      expect(screen).toContain('last replug down 1.2s');
      expect(screen).toContain('detection sources:');
      expect(screen).toContain('runtime: native');
      fixture('80x24-detail', normalise(screen, port()));
      tmux.keys('End');
      screen = await tmux.until(
        (s) => s.includes('reconnect.succeeded'),
        'the last events, at the end of the pane',
      );
      expect(screen).toMatch(/session\.state +1209:0001:ABC123 up→waiting/);
      tmux.keys('Escape');
      await tmux.until((s) => s.includes('1-20 of 100'), 'back to the list');

      tmux.literal('q');
      screen = await tmux.until((s) => s.includes('EXIT=0'), 'the exit');
      expect(tmux.format('#{alternate_on}')).toBe('0');
      const modes = await waitForFile(stty);
      expect(modes).toMatch(/(^|\s)icanon(\s|$)/);
      expect(modes).toMatch(/(^|\s)echo(\s|$)/);
    } finally {
      tmux.kill();
    }
  }, 120_000);

  it('160×50: wider columns, more rows; Ctrl-C quits and restores the terminal too', async () => {
    const { tmux, stty } = start(160, 50);
    try {
      await tmux.until((s) => s.includes('100 agents') && s.includes('pi-046'), '100 agents');
      for (const i of [1, 2, 3]) await fleet.replug(agentName(i), 1200 * i, 300 * i);
      const screen = await steady(
        tmux,
        port(),
        await tmux.until((s) => s.includes('3.6s'), 'the replug downtimes'),
      );
      const lines = screen.split('\n');
      expect(lines).toHaveLength(50);
      expect(lines[2]).toMatch(/RUNTIME/);
      expect(lines[2]).toMatch(/LAST EVENT/);
      expect(lines[49]).toMatch(/^1-46 of 100/);
      fixture('160x50-top', normalise(screen, port()));
      tmux.keys('C-c');
      await tmux.until((s) => s.includes('EXIT=0'), 'the exit');
      expect(tmux.format('#{alternate_on}')).toBe('0');
      expect(await waitForFile(stty)).toMatch(/(^|\s)icanon(\s|$)/);
    } finally {
      tmux.kill();
    }
  }, 120_000);
});

async function waitForFile(file: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(file) || readFileSync(file, 'utf8') === '') {
    if (Date.now() > deadline) throw new Error(`no ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(file, 'utf8');
}
