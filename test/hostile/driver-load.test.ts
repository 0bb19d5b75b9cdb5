/**
 * Issue 12: a `--driver` whose factory never resolves kept the agent from starting, logging nothing and
 * deaf to SIGINT. Loading is bounded now (src/session/drivers/load.ts): unit tests on a fake clock, then the
 * real CLI with such a module and a SIGINT.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, ReplugError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { loadDriver } from '../../src/session/drivers/load.js';
import { FakeClock } from '../fakes/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { ensureBuilt, spawnAgent } from '../helpers/agent-process.js';

let dir: string;
const log = silentLogger();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replug-hostile-driver-'));
  await writeFile(join(dir, 'never.mjs'), 'export default () => new Promise(() => {});\n');
  await writeFile(join(dir, 'tla.mjs'), 'await new Promise(() => {});\nexport default {};\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Settles `p` into a value we can look at without awaiting it for ever. */
function track<T>(p: Promise<T>) {
  const state: { done: boolean; error?: unknown } = { done: false };
  p.then(
    () => {
      state.done = true;
    },
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return state;
}

/**
 * The bound's timer is armed after real I/O (stat, import): wait in real time until one timer has been
 * pending for 200 ms, i.e. the stage that hangs is the one waiting.
 */
async function boundArmed(clock: FakeClock): Promise<void> {
  let stableSince = Date.now();
  for (let i = 0; i < 300; i++) {
    if (clock.pendingCount !== 1) stableSince = Date.now();
    else if (Date.now() - stableSince >= 200) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  // No timer at all (code without a bound): advancing fake time then proves it never settles.
}

describe('a --driver that never settles (issue 12)', () => {
  it.each([
    ['never.mjs', /the driver factory in never\.mjs did not settle within 10 s/],
    ['tla.mjs', /the module in tla\.mjs did not settle within 10 s/],
  ])('%s fails with REPLUG_DRIVER_LOAD after the bound', async (spec, pattern) => {
    const clock = new FakeClock();
    const state = track(loadDriver(spec, { cwd: dir, log, clock } as Parameters<typeof loadDriver>[1]));
    await boundArmed(clock);
    await clock.advance(9_999);
    expect(state.done).toBe(false);
    await clock.advance(1);
    // The import is real I/O: give it a moment of real time after the fake bound passed.
    for (let i = 0; i < 50 && !state.done; i++) await new Promise((r) => setTimeout(r, 20));
    expect(state.done).toBe(true);
    expect(state.error).toBeInstanceOf(ReplugError);
    expect((state.error as ReplugError).code).toBe(ErrorCodes.DRIVER_LOAD);
    expect((state.error as ReplugError).message).toMatch(pattern);
    expect(clock.pendingCount).toBe(0);
  });

  it('stops waiting at once when the signal aborts', async () => {
    const controller = new AbortController();
    const loading = loadDriver('never.mjs', {
      cwd: dir,
      log,
      signal: controller.signal,
    } as Parameters<typeof loadDriver>[1]);
    const state = track(loading);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error('received SIGINT'));
    for (let i = 0; i < 50 && !state.done; i++) await new Promise((r) => setTimeout(r, 10));
    expect(state.done).toBe(true);
    expect((state.error as ReplugError).message).toMatch(/stopped while waiting/);
  });

  it('the agent says what it is loading and stops on SIGINT (exit 0) while the factory hangs', async () => {
    await ensureBuilt();
    const tree = await FakeUsbTree.create();
    try {
      const proc = spawnAgent({
        id: 'hostile-driver',
        sysfsRoot: tree.sysfsRoot,
        devfsRoot: tree.devfsRoot,
        stateDir: join(dir, 'state'),
        extra: ['--target', '1209:0001', '--driver', join(dir, 'never.mjs')],
      });
      try {
        await proc.waitForLog((l) => /^loading session driver /.test(l.msg), 15_000, 'the loading line');
        proc.kill('SIGINT');
        const status = await proc.exited(10_000);
        expect(status.code).toBe(0);
      } finally {
        proc.kill('SIGKILL'); // no-op once it exited; never leave a hung agent behind
      }
    } finally {
      await tree.cleanup();
    }
  }, 60_000);
});
