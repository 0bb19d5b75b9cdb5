// The example driver from examples/drivers/devnode.mjs, loaded the way `--driver` loads it and run by a
// real Session on the system clock against a real file standing in for a usbfs node.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionStateName } from '../../../src/events.js';
import { silentLogger } from '../../../src/log.js';
import { loadDriver } from '../../../src/session/drivers/load.js';
import { Session } from '../../../src/session/session.js';
import type { UsbDevice } from '../../../src/usb/types.js';
import { systemClock } from '../../../src/util/clock.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const log = silentLogger();
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

function descriptor(vid: number, pid: number): Buffer {
  const b = Buffer.alloc(18);
  b.writeUInt8(18, 0);
  b.writeUInt8(1, 1);
  b.writeUInt16LE(vid, 8);
  b.writeUInt16LE(pid, 10);
  return b;
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('examples/drivers/devnode.mjs', () => {
  it('keeps a session up while the node exists and restarts it when the node comes back', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'replug-devnode-'));
    const node = path.join(dir, '004');
    await writeFile(node, descriptor(0x1209, 0x0001));
    const driver = await loadDriver('examples/drivers/devnode.mjs', {
      cwd: repoRoot,
      log,
      options: { probeIntervalMs: 20 },
    });
    expect(driver.name).toBe('devnode');
    const states: SessionStateName[] = [];
    const codes: string[] = [];
    const session = new Session({
      target: { vid: '1209', pid: '0001' },
      driver,
      clock: systemClock,
      log,
      backoff: { initialMs: 20, maxMs: 40 },
      emit: (name, ...args) => {
        const e = args[0] as { state?: SessionStateName; error?: { code: string } };
        if (name === 'session.state' && e.state) states.push(e.state);
        if (name === 'reconnect.failed' && e.error) codes.push(e.error.code);
      },
    });
    const device: UsbDevice = {
      key: 'port:1-1',
      vid: '1209',
      pid: '0001',
      bus: 1,
      address: 4,
      devNode: node,
    };
    session.start([device]);
    await until(() => session.snapshot().state === 'up');

    // The node vanishes without a removal event (a wedge, as far as the session can tell): the probe
    // notices, and retries fail with REPLUG_USB_GONE until the node is back.
    await unlink(node);
    await until(() => codes.length >= 1);
    expect(codes[0]).toBe('REPLUG_USB_GONE');
    await writeFile(node, descriptor(0x1209, 0x0001));
    await until(() => states.filter((s) => s === 'up').length === 2);
    expect(states.slice(0, 4)).toEqual(['starting', 'up', 'terminating', 'backoff']);
    expect(session.snapshot().stats).toMatchObject({ ok: 2, probeFailures: 1 });

    await session.stop();
    expect(session.snapshot().state).toBe('stopped');
  });

  it('refuses a node that holds another device', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'replug-devnode-'));
    const node = path.join(dir, '005');
    await writeFile(node, descriptor(0x0403, 0x6001));
    const driver = await loadDriver('examples/drivers/devnode.mjs', { cwd: repoRoot, log });
    const ctx = { signal: new AbortController().signal, log };
    const err = await driver
      .open({ key: 'k', vid: '1209', pid: '0001', bus: 1, address: 5, devNode: node }, ctx)
      .catch((e: { code: string }) => e);
    expect(err).toMatchObject({ code: 'REPLUG_USB_IDENTITY_MISMATCH' });
  });
});
