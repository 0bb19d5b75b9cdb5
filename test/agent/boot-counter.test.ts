import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOOT_COUNTER_FILE, nextBootCounter } from '../../src/agent/boot-counter.js';
import { MAX_SESSION } from '../../src/mqtt/queue/format.js';
import { FakeDisk } from '../mqtt/queue/fake-disk.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'replug-boot-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const lines: { level: number; msg: string }[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) }) };
}

describe('nextBootCounter', () => {
  it('counts 1, 2, 3 from a fresh state dir and continues an existing count', async () => {
    expect([await nextBootCounter(dir), await nextBootCounter(dir), await nextBootCounter(dir)]).toEqual([
      1, 2, 3,
    ]);
    writeFileSync(path.join(dir, BOOT_COUNTER_FILE), '41\n'); // the format before issue 10
    expect(await nextBootCounter(dir)).toBe(42);
    expect(Number(readFileSync(path.join(dir, BOOT_COUNTER_FILE), 'utf8'))).toBe(42);
  });

  // Issue 10: 2^53-1 made the next count unsafe (then 1 again); 1e300 read as 1.
  it.each(['', 'abc', '-3', '1e300', '4.5', '9007199254740991', String(MAX_SESSION), '0'])(
    'starts over at 1 from %j, and says so once',
    async (content) => {
      writeFileSync(path.join(dir, BOOT_COUNTER_FILE), content);
      const { lines, log } = capture();
      expect(await nextBootCounter(dir, { log })).toBe(1);
      expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
      expect(await nextBootCounter(dir, { log })).toBe(2);
      expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    },
  );

  // Issue 10: write + rename without fsync could come back as the previous count after a power cut.
  it('is on the device when it returns: a power cut at any later moment never brings back a used count', async () => {
    const probe = new FakeDisk();
    for (let i = 0; i < 3; i++) await nextBootCounter('/state', { disk: probe });
    for (let n = 1; n <= probe.ops; n++) {
      const disk = new FakeDisk();
      disk.freezeAt(n);
      const returned: number[] = [];
      for (let i = 0; i < 3; i++) {
        try {
          returned.push(await nextBootCounter('/state', { disk }));
        } catch {
          break; // the power is off
        }
      }
      const after = await nextBootCounter('/state', { disk: disk.afterPowerCut() });
      expect(after, `power cut before op ${n}`).toBeGreaterThan(Math.max(0, ...returned));
    }
  });

  it('overwrites in place when the directory refuses the temp file (full disk, read-only dir)', async () => {
    const disk = new FakeDisk();
    expect(await nextBootCounter('/state', { disk })).toBe(1);
    disk.fail((op, file) => (op === 'open' && file.endsWith('.tmp') ? 'ENOSPC' : undefined));
    expect(await nextBootCounter('/state', { disk })).toBe(2);
    expect(await nextBootCounter('/state', { disk: disk.afterPowerCut() })).toBe(3);
  });

  it('fails with REPLUG_STATE_DIR when the counter cannot be saved at all', async () => {
    const disk = new FakeDisk();
    disk.fail((op) => (op === 'open' || op === 'overwrite' ? 'EROFS' : undefined));
    await expect(nextBootCounter('/state', { disk })).rejects.toMatchObject({
      code: 'REPLUG_STATE_DIR',
      message: expect.stringContaining('EROFS'),
    });
  });
});
