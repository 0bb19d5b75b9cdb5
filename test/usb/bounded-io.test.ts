import { execFileSync } from 'node:child_process';
import { readSync } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FsOps, realSyncOps, UsbFs, UsbFsError } from '../../src/usb/bounded-io.js';
import { FakeClock } from '../fakes/clock.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replug-bounded-io-'));
  await writeFile(join(dir, 'attr'), 'hello\n');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The held read finishes with real fs calls after release: wait in real time. */
/** Waits for the condition; the 10 s cap only bounds a failure (1 s was lost under a loaded full run). */
async function eventually(check: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e as UsbFsError).code,
  );

/** Real fs, but open() of paths in `held` waits for release(path). */
function heldOps() {
  const gates = new Map<string, () => void>();
  let opens = 0;
  let maxOpen = 0;
  let open_ = 0;
  const ops: FsOps = {
    stat: () => stat(join(dir, 'attr')),
    open: async (path, flags) => {
      opens++;
      open_++;
      maxOpen = Math.max(maxOpen, open_);
      try {
        if (path.includes('held')) await new Promise<void>((r) => gates.set(path, r));
        return await open(join(dir, 'attr'), flags);
      } finally {
        open_--;
      }
    },
  };
  return { ops, release: (p: string) => gates.get(p)?.(), opens: () => opens, maxOpen: () => maxOpen };
}

describe('UsbFs', () => {
  it('reads attributes and fake nodes; refuses FIFOs and foreign devices without waiting on them', async () => {
    const fs = new UsbFs();
    expect(String(await fs.readAttr(join(dir, 'attr')))).toBe('hello\n');
    expect(String(await fs.readNode(join(dir, 'attr'), 3))).toBe('hel');
    await expect(fs.readAttr(join(dir, 'fifo'))).rejects.toMatchObject({ code: 'ENOTATTR' });
    await expect(fs.readNode(join(dir, 'fifo'), 18)).rejects.toThrow(/is a FIFO, not a usbfs node/);
    await expect(fs.readNode('/dev/null', 18)).rejects.toThrow(/character device 1:3, not a usbfs node/);
    await expect(fs.readAttr(dir)).rejects.toThrow(/is a directory/);
    await expect(fs.readAttr(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(fs.stats()).toMatchObject({ inFlight: 0, stuck: 0, rejectedTypes: 4 });
  });

  it('reads unlocked attributes synchronously, each its own bytes, with the same type checks as locked ones', async () => {
    const fs = new UsbFs();
    await writeFile(join(dir, 'other'), 'a longer value\n');
    const first = await fs.readAttr(join(dir, 'other'));
    const second = await fs.readAttr(join(dir, 'attr'));
    // One page buffer serves every synchronous read: a result must not change under a later read.
    expect([String(first), String(second)]).toEqual(['a longer value\n', 'hello\n']);
    // A lock key takes the bounded asynchronous path: same answers.
    expect(String(await fs.readAttr(join(dir, 'attr'), 'dev-1'))).toBe('hello\n');
    await expect(fs.readAttr(join(dir, 'fifo'), 'dev-1')).rejects.toMatchObject({ code: 'ENOTATTR' });
    await expect(fs.readAttr(join(dir, 'fifo'))).rejects.toMatchObject({ code: 'ENOTATTR' });
    // Injected async ops without sync ones see every read, unlocked too (tests stand in a kernel there).
    const held = heldOps();
    const viaOps = new UsbFs({ ops: held.ops });
    expect(String(await viaOps.readAttr(join(dir, 'attr')))).toBe('hello\n');
    expect(held.opens()).toBe(1);
  });

  it('times a held read out, keeps it counted as stuck, and refuses its device until it returns', async () => {
    const clock = new FakeClock();
    const held = heldOps();
    const fs = new UsbFs({ ops: held.ops, clock, timeoutMs: 1000 });
    const first = codeOf(fs.readAttr(join(dir, 'held-a'), 'usb:1-4'));
    await clock.advance(1000);
    expect(await first).toBe('ETIMEDOUT');
    expect(fs.stats()).toMatchObject({ stuck: 1, timeouts: 1 });
    // Same device: refused at once, without opening; another device still reads.
    expect(await codeOf(fs.readAttr(join(dir, 'held-b'), 'usb:1-4'))).toBe('EBUSY');
    expect(await codeOf(fs.readAttr(join(dir, 'attr'), 'usb:1-5'))).toBe('ok');
    expect(held.opens()).toBe(2);
    held.release(join(dir, 'held-a'));
    await eventually(() => fs.stats().stuck === 0);
    expect(fs.stats().stuck).toBe(0);
    expect(await codeOf(fs.readAttr(join(dir, 'attr'), 'usb:1-4'))).toBe('ok');
  });

  it('refuses every read while maxStuck reads are stuck, and tells when to try again', async () => {
    const clock = new FakeClock();
    const held = heldOps();
    const fs = new UsbFs({ ops: held.ops, clock, timeoutMs: 100, maxStuck: 2 });
    const a = codeOf(fs.readAttr(join(dir, 'held-1'), 'usb:1-1'));
    const b = codeOf(fs.readAttr(join(dir, 'held-2'), 'usb:1-2'));
    await clock.advance(100);
    expect([await a, await b]).toEqual(['ETIMEDOUT', 'ETIMEDOUT']);
    const refused = await fs.readAttr(join(dir, 'attr')).catch((e: unknown) => e as UsbFsError);
    expect(refused).toBeInstanceOf(UsbFsError);
    expect((refused as UsbFsError).code).toBe('EBUSY');
    let retry = false;
    void (refused as UsbFsError).settled.then(() => {
      retry = true;
    });
    held.release(join(dir, 'held-1'));
    await eventually(() => retry);
    expect(retry).toBe(true);
    expect(await codeOf(fs.readAttr(join(dir, 'attr')))).toBe('ok');
  });

  it('keeps at most `concurrency` reads open at once and serialises reads of one device', async () => {
    const held = heldOps();
    const fs = new UsbFs({ ops: held.ops, concurrency: 4 });
    await Promise.all(Array.from({ length: 200 }, () => fs.readAttr(join(dir, 'attr'))));
    expect(held.maxOpen()).toBeLessThanOrEqual(4);
    const order: string[] = [];
    const slow: FsOps = {
      stat: () => stat(join(dir, 'attr')),
      open: async (path, flags) => {
        order.push(`open ${path.slice(-1)}`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`done ${path.slice(-1)}`);
        return open(join(dir, 'attr'), flags);
      },
    };
    const one = new UsbFs({ ops: slow });
    await Promise.all(['x1', 'x2', 'x3'].map((n) => one.readAttr(join(dir, n), 'usb:2-2')));
    expect(order).toEqual(['open 1', 'done 1', 'open 2', 'done 2', 'open 3', 'done 3']);
  });
});

describe('UsbFs, attributes that take the device lock, with synchronous calls at hand', () => {
  /** Real fs; the read (the one call that waits in the kernel) is counted and held until release(). */
  function heldReads() {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const reads: string[] = [];
    const ops: FsOps = {
      stat,
      open: () => Promise.reject(new Error('a sysfs attribute is opened synchronously')),
      readLocked: async (path, fd, buf) => {
        reads.push(path);
        await gate;
        return readSync(fd, buf, 0, buf.length, null);
      },
    };
    return { ops, reads, release: () => release() };
  }

  it('sends only the read to the thread pool, and shares one read among callers asking meanwhile', async () => {
    const held = heldReads();
    const fs = new UsbFs({ ops: held.ops, syncOps: realSyncOps, timeoutMs: 10_000 });
    const path = join(dir, 'attr');
    const a = fs.readAttr(path, 'usb:1-5');
    const b = fs.readAttr(path, 'usb:1-5');
    await eventually(() => held.reads.length > 0);
    expect(held.reads).toEqual([path]);
    held.release();
    const [x, y] = await Promise.all([a, b]);
    expect(x.toString()).toBe('hello\n');
    expect(y.toString()).toBe('hello\n');
    expect(held.reads).toEqual([path]); // one read for both callers
    // Once it returned, a new call reads again (the share is for reads in flight, not a cache).
    expect((await fs.readAttr(path, 'usb:1-5')).toString()).toBe('hello\n');
    expect(held.reads).toEqual([path, path]);
  });

  it('still rejects a FIFO in place of the attribute, at once', async () => {
    const held = heldReads();
    const fs = new UsbFs({ ops: held.ops, syncOps: realSyncOps, timeoutMs: 10_000 });
    expect(await codeOf(fs.readAttr(join(dir, 'fifo'), 'usb:1-5'))).toBe('ENOTATTR');
    expect(held.reads).toEqual([]);
  });
});
