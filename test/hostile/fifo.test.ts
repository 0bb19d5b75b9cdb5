/**
 * Issue 12: FIFOs in place of devfs nodes (and of a sysfs attribute) blocked open() in libuv's threads, so
 * every fs call of the agent stopped: 0 events over 2 replug cycles, and SIGTERM waited until something
 * opened the FIFOs. Nodes and attributes are type-checked and opened O_NONBLOCK now (src/usb/bounded-io.ts).
 * Replayed with the real sources in this process, then with the real CLI.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DevfsSource } from '../../src/usb/sources/devfs.js';
import { SysfsSource } from '../../src/usb/sources/sysfs.js';
import { UsbWatcher } from '../../src/usb/watcher.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { ensureBuilt, loggedEvents, spawnAgent } from '../helpers/agent-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Four devices whose usbfs nodes are FIFOs, one whose manufacturer attribute is a FIFO. */
async function hostileTree(): Promise<FakeUsbTree> {
  const tree = await FakeUsbTree.create();
  for (let i = 0; i < 4; i++) {
    const d = await tree.plug({ vid: 0x1209, pid: 0x10 + i, portPath: `1-${i + 2}`, serial: `F${i}` });
    rmSync(tree.nodePath(1, d.address));
    execFileSync('mkfifo', [tree.nodePath(1, d.address)]);
  }
  await tree.plug({ vid: 0x1209, pid: 0x20, portPath: '1-7', manufacturer: 'x', serial: 'M' });
  const attr = join(tree.sysfsDevicesDir, '1-7', 'manufacturer');
  rmSync(attr);
  execFileSync('mkfifo', [attr]);
  return tree;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('FIFOs in a fake tree (issue 12)', () => {
  let tree: FakeUsbTree | undefined;
  afterEach(async () => {
    await tree?.cleanup();
    tree = undefined;
  });

  it('the sources start, see every device, follow replugs and stop at once', {
    timeout: 30_000,
  }, async () => {
    tree = await hostileTree();
    const devfs = new DevfsSource({ devfsRoot: tree.devfsRoot, sysfsRoot: tree.sysfsRoot });
    const sysfs = new SysfsSource({ sysfsRoot: tree.sysfsRoot, devfsRoot: tree.devfsRoot, intervalMs: 100 });
    const watcher = new UsbWatcher({ sources: [devfs, sysfs], settleMs: 100 });
    const seen: string[] = [];
    watcher.on('device.added', ({ device }) => seen.push(`+${device.pid}`));
    watcher.on('device.removed', ({ device }) => seen.push(`-${device.pid}`));
    await watcher.start();
    // Every device is there (devfs falls back to sysfs for the FIFO nodes); the FIFO attribute is left out.
    const current = watcher.current();
    expect(current.map((d) => d.pid).sort()).toEqual(['0010', '0011', '0012', '0013', '0020']);
    expect(current.find((d) => d.pid === '0020')).toMatchObject({ serial: 'M' });
    expect(current.find((d) => d.pid === '0020')?.manufacturer).toBeUndefined();
    for (let cycle = 0; cycle < 2; cycle++) {
      const d = await tree.plug({ vid: 0x1209, pid: 0x0002, portPath: '1-9' });
      await until(`replug ${cycle} added`, () => seen.filter((s) => s === '+0002').length === cycle + 1);
      await tree.unplug(d);
      await until(`replug ${cycle} removed`, () => seen.filter((s) => s === '-0002').length === cycle + 1);
    }
    const started = Date.now();
    await watcher.stop();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(devfs.watchCount).toBe(0);
  });
});

describe('replug agent on a tree with FIFOs (issue 12)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-hostile-fifo-'));
  }, 240_000);
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports two replug cycles and exits 0 on SIGTERM', async () => {
    const tree = await hostileTree();
    try {
      const proc = spawnAgent({
        id: 'hostile-fifo',
        sysfsRoot: tree.sysfsRoot,
        devfsRoot: tree.devfsRoot,
        stateDir: join(dir, 'state'),
        extra: ['--settle', '100'],
      });
      try {
        await proc.waitForLog((l) => /^agent hostile-fifo started/.test(l.msg), 15_000, 'started');
        for (let cycle = 1; cycle <= 2; cycle++) {
          const d = await tree.plug({ vid: 0x1209, pid: 0x0002, portPath: '1-9' });
          const pid2 = (type: string) =>
            loggedEvents(proc, type).filter((l) => (l.device as { pid?: string }).pid === '0002').length;
          await proc.waitUntil(() => pid2('device.added') >= cycle, 10_000, `added #${cycle}`);
          await tree.unplug(d);
          await proc.waitUntil(() => pid2('device.removed') >= cycle, 10_000, `removed #${cycle}`);
        }
        const status = await proc.stop(10_000);
        expect(status.code).toBe(0);
      } finally {
        proc.kill('SIGKILL'); // no-op once it exited; never leave a hung agent behind
      }
    } finally {
      await tree.cleanup();
    }
  }, 60_000);
});
