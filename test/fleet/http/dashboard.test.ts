/**
 * `replug watch --http` in a real browser (issue 19): Debian's headless Chromium, driven over WebDriver,
 * against a real broker carrying 20 simulated agents and one real agent on a fake USB tree. A plug on the
 * tree shows on the page (the latency is printed; speed goals live in bench/), the filter narrows the
 * table like the terminal's, a row opens the agent's detail, and screenshots at phone and desktop widths
 * are written to test-results/web/ (not committed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../../src/broker/broker.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import {
  type AgentProcess,
  DEVNODE_DRIVER,
  ensureBuilt,
  REPO_ROOT,
  spawnAgent,
  spawnCli,
} from '../../helpers/agent-process.js';
import { type FleetSim, publishFleet } from '../view/fleet-sim.js';
import { Browser, browserAvailable } from './webdriver.js';

const ready = browserAvailable();
if (!ready) {
  if (process.env.CI === 'true')
    throw new Error('chromium/chromedriver missing (apt-get install -y chromium chromium-driver)');
  console.warn(
    '\n!!! chromium not installed: the web dashboard suite is SKIPPED (apt-get install -y chromium chromium-driver)\n',
  );
}
const ARTIFACTS = join(REPO_ROOT, 'test-results', 'web');

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The row of `agent` on the page as its cells' text, or undefined. */
const ROW = `const tr = document.querySelector('#fleet tbody tr[data-agent="' + arguments[0] + '"]');
return tr ? [...tr.cells].map((c) => c.textContent) : null;`;

describe.skipIf(!ready)('the fleet page in headless Chromium', () => {
  let broker: RunningBroker;
  let fleet: FleetSim;
  let tree: FakeUsbTree;
  let dir: string;
  let agent: AgentProcess;
  let watch: AgentProcess;
  let browser: Browser;
  let page: string;

  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-web-'));
    broker = await startBroker({ port: 0 });
    fleet = await publishFleet(broker.url, 20, Date.now());
    tree = await FakeUsbTree.create();
    agent = spawnAgent({
      id: 'lab-web',
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      stateDir: join(dir, 'state'),
      mqtt: broker.url,
      extra: ['--settle', '100', '--target', '1209:0001', '--driver', DEVNODE_DRIVER],
    });
    await agent.waitForLog((l) => /^agent .* started/.test(l.msg), 20_000, 'the agent started');
    watch = spawnCli(['watch', '--mqtt', broker.url, '--json', '--http', '127.0.0.1:0']);
    page = await until('the page address', async () => /fleet page on (\S+)/.exec(watch.stderr())?.[1]);
    browser = await Browser.start();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    watch?.kill('SIGTERM');
    await agent?.stop();
    await fleet?.close();
    await broker?.close();
    await tree?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows the fleet, a plug within moments, the same filter, the detail; screenshots', async () => {
    await browser.open(page);
    await until('21 agents on the page', () =>
      browser.run<boolean>("return document.querySelector('#count').textContent.includes('of 21')"),
    );
    // The agent's retained target state is a topic of its own: counting it among the 21 (its status)
    // does not say its row has the target yet. Wait for the row, then check it.
    const before = await until('lab-web row with its target', async () => {
      const row = await browser.run<string[] | null>(ROW, 'lab-web');
      return row?.[3] ? row : undefined;
    });
    expect(before?.[1]).toBe('online');
    expect(before?.[3]).toBe('1209:0001');
    expect(before?.[4]).toBe('waiting');
    const t0 = Date.now();
    await tree.plug({ vid: '1209', pid: '0001', serial: 'WEB1' });
    await until(
      'the session up on the page',
      async () => (await browser.run<string[] | null>(ROW, 'lab-web'))?.[4] === 'up',
    );
    console.log(
      `plug on the fake tree -> "up" on the page: ${Date.now() - t0} ms (issue 19 goal: within 1000 ms)`,
    );

    // Native vs container side by side for the simulated target.
    const compare = await browser.run<string>("return document.querySelector('#compare').textContent");
    expect(compare).toMatch(/native/);
    expect(compare).toMatch(/container-hostnet/);

    await browser.run(
      "const f = document.querySelector('#filter'); f.value = 'pi-01 backoff'; f.dispatchEvent(new Event('input'));",
    );
    const filtered = await browser.run<string[]>(
      "return [...document.querySelectorAll('#fleet tbody tr')].map((r) => r.dataset.agent)",
    );
    expect(filtered).toEqual(['pi-014']);
    await browser.run(
      "const f = document.querySelector('#filter'); f.value = ''; f.dispatchEvent(new Event('input'));",
    );

    await browser.run('document.querySelector(\'#fleet tbody tr[data-agent="lab-web"]\').click()');
    // The detail is fetched when the row opens: wait for its text, not for the pane alone.
    const detail = await until(
      'the detail pane',
      async () =>
        (await browser.run<string>(
          "return document.querySelector('#detail').hidden ? '' : document.querySelector('#detail-body').textContent",
        )) || undefined,
    );
    expect(detail).toContain('agent lab-web on');
    expect(detail).toContain('reconnect.succeeded');

    mkdirSync(ARTIFACTS, { recursive: true });
    await browser.resize(1280, 900);
    writeFileSync(join(ARTIFACTS, 'desktop.png'), await browser.screenshot());
    await browser.resize(390, 844);
    writeFileSync(join(ARTIFACTS, 'phone.png'), await browser.screenshot());
  }, 120_000);
});
