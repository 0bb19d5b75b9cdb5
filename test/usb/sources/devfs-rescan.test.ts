/**
 * DevfsSource.rescan() (issue 18): a full reconcile that begins after the call, with another read for
 * nodes marked unreadable. Real inotify on a fake tree; where a test needs inotify to lose events (as on
 * IN_Q_OVERFLOW), the watch it gives the source drops them while muted, and where it needs a node that
 * cannot be opened (EACCES: the tests run as root, so chmod would not do), the reader's open() refuses it.
 */
import { type FSWatcher, watch } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type FsOps, UsbFs } from '../../../src/usb/bounded-io.js';
import { DevfsSource } from '../../../src/usb/sources/devfs.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { Recorder } from '../recorder.js';

/** Real inotify watches whose events are dropped while `muted`. */
function lossyWatch() {
  const state = { muted: false, dropped: 0 };
  const watchDir = (path: string, onChange: () => void): FSWatcher =>
    watch(path, { persistent: true }, () => {
      if (state.muted) state.dropped++;
      else onChange();
    });
  return { state, watchDir };
}

/** Real fs calls, except that open() of `path` fails with EACCES while `denied`, or waits while `held`. */
function gatedOpen(path: string) {
  const state = { denied: false, held: false, waiting: 0 };
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const ops: FsOps = {
    stat,
    open: async (p, flags) => {
      if (p === path && state.denied) {
        throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
      }
      if (p === path && state.held) {
        state.waiting++;
        await gate;
      }
      return open(p, flags);
    },
  };
  return { state, ops, release: () => release() };
}

describe('DevfsSource.rescan()', () => {
  let tree: FakeUsbTree | undefined;
  let source: DevfsSource | undefined;
  afterEach(async () => {
    await source?.stop();
    await tree?.cleanup();
    source = undefined;
    tree = undefined;
  });

  it('reports a device whose events inotify lost, and its removal, by the time it resolves', async () => {
    tree = await FakeUsbTree.create();
    const lossy = lossyWatch();
    source = new DevfsSource({
      devfsRoot: tree.devfsRoot,
      sysfsRoot: tree.sysfsRoot,
      watchDir: lossy.watchDir,
    });
    const rec = new Recorder();
    await source.start(rec);
    lossy.state.muted = true;
    const missed = await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'MISSED' });
    expect(rec.events).toEqual([]); // no event reached the source: nothing else would list again
    await source.rescan();
    expect(rec.summary()).toEqual([`added 1-${missed.address}`]);
    expect(rec.events[0]?.device).toMatchObject({ serial: 'MISSED', key: 'serial:MISSED' });
    await tree.unplug(missed);
    await source.rescan();
    expect(rec.summary()).toEqual([`added 1-${missed.address}`, `removed 1-${missed.address}`]);
    expect(rec.events[1]?.device).toMatchObject({ serial: 'MISSED' });
    expect(lossy.state.dropped).toBeGreaterThan(0); // the test did stand in a lossy inotify
  });

  it('reads a node marked unreadable again: a permission fixed shows the device', async () => {
    tree = await FakeUsbTree.create();
    const node = tree.nodePath(1, 20);
    const gated = gatedOpen(node);
    gated.state.denied = true;
    // No sysfs root: sysfs would otherwise name the device even though its node cannot be read.
    source = new DevfsSource({
      devfsRoot: tree.devfsRoot,
      fs: new UsbFs({ ops: gated.ops }),
      readRetryDelaysMs: [1],
    });
    const rec = new Recorder();
    await source.start(rec);
    await tree.plug({ vid: 0x0403, pid: 0x6001, address: 20 });
    await rec.waitFor(() => source?.unreadable.has('001/020') === true, 5000, 'the node marked unreadable');
    expect(source.unreadable.get('001/020')).toContain('EACCES');
    await source.rescan(); // still denied: read again, and still unreadable
    expect(rec.events).toEqual([]);
    expect(source.unreadable.get('001/020')).toContain('EACCES');
    gated.state.denied = false; // the operator fixed the udev rule
    await source.rescan();
    expect(rec.summary()).toEqual(['added 1-20']);
    expect(rec.events[0]?.device).toMatchObject({ vid: '0403', pid: '6001' });
    expect(source.unreadable.size).toBe(0);
  });

  it('resolves only once the reads of the nodes it listed are done', async () => {
    tree = await FakeUsbTree.create();
    const lossy = lossyWatch();
    const gated = gatedOpen(tree.nodePath(1, 30));
    gated.state.held = true; // the kernel holds the device lock while it probes drivers
    source = new DevfsSource({
      devfsRoot: tree.devfsRoot,
      sysfsRoot: tree.sysfsRoot,
      fs: new UsbFs({ ops: gated.ops, timeoutMs: 60_000 }),
      watchDir: lossy.watchDir,
    });
    const rec = new Recorder();
    await source.start(rec);
    lossy.state.muted = true;
    await tree.plug({ vid: 0xbeef, pid: 0x0030, address: 30, portPath: '1-3' });
    let resolved = false;
    const rescan = source.rescan().then(() => {
      resolved = true;
    });
    await rec.waitFor(() => gated.state.waiting > 0, 5000, 'the rescan to read the new node');
    expect(resolved).toBe(false); // its read is held: the listing has not ended
    expect(rec.events).toEqual([]);
    gated.release();
    await rescan;
    expect(rec.summary()).toEqual(['added 1-30']);
  });

  it('resolves at once after stop, and when stop comes while it waits', async () => {
    tree = await FakeUsbTree.create();
    const gated = gatedOpen(tree.nodePath(1, 40));
    gated.state.held = true;
    const lossy = lossyWatch();
    source = new DevfsSource({
      devfsRoot: tree.devfsRoot,
      fs: new UsbFs({ ops: gated.ops, timeoutMs: 60_000 }),
      watchDir: lossy.watchDir,
      stopTimeoutMs: 100,
    });
    const rec = new Recorder();
    await source.start(rec);
    lossy.state.muted = true;
    await tree.plug({ vid: 0xbeef, pid: 0x0040, address: 40 });
    const rescan = source.rescan();
    await rec.waitFor(() => gated.state.waiting > 0, 5000, 'the rescan to read the new node');
    await source.stop();
    await rescan; // would hang for ever (the read is held for good) if stop did not end the wait
    await source.rescan();
    gated.release();
    expect(rec.events).toEqual([]);
  });
});
