/**
 * Issue 12: `replug agent --state-dir /proc/x` hung at ~75 % CPU and ignored SIGINT. Node's recursive mkdir
 * (MKDirpAsync in node_file.cc) treats ENOENT as "parent missing", creates the parent (EEXIST: it exists)
 * and retries the child for ever; procfs answers mkdir with ENOENT. The first test carries that upstream
 * behaviour as a minimal reproduction, in a child process with a kill timer; the rest prove replug's own
 * walk (src/agent/state-dir.ts) gives one line and exit 1 instead.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveStateDir } from '../../src/agent/state-dir.js';
import { ErrorCodes, ReplugError } from '../../src/errors.js';
import { ensureBuilt, runCli } from '../helpers/agent-process.js';

const hasProc = existsSync('/proc/self/stat');

/** Runs `code` in a fresh node; resolves with what it printed, or 'hung' when killed after `ms`. */
function nodeWithin(code: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('close', (_code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL' ? 'hung' : out.trim());
    });
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replug-hostile-state-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!hasProc)('state dirs that cannot be created (issue 12)', () => {
  it('upstream: Node 20 recursive mkdir never settles under /proc (reproduction; the workaround stays while this holds)', async () => {
    const result = await nodeWithin(
      "require('fs').promises.mkdir('/proc/replug-x', { recursive: true }).then(() => console.log('resolved'), (e) => console.log(e.code))",
      1500,
    );
    // If this ever prints an errno, Node fixed it and makeDirs() in state-dir.ts could become mkdir -p again.
    expect(result).toBe('hung');
  });

  it('resolveStateDir rejects /proc/x, /proc/x/y, a dangling symlink and a file at once with STATE_DIR', async () => {
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
    await writeFile(join(dir, 'file'), 'x');
    for (const [path, why] of [
      ['/proc/replug-x', /cannot be created \(ENOENT\)/],
      ['/proc/replug-x/y', /cannot be created \(ENOENT at \/proc\/replug-x\)/],
      [join(dir, 'dangling', 'state'), /cannot be created \(ENOENT/],
      [join(dir, 'file', 'state'), /cannot be created \(ENOTDIR/],
      ['/proc', /is not writable/],
    ] as const) {
      const err = await resolveStateDir(path, {}, dir).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(ReplugError);
      expect((err as ReplugError).code).toBe(ErrorCodes.STATE_DIR);
      expect((err as ReplugError).message).toMatch(why);
    }
    // A missing chain under a real directory is created, as before.
    expect(await resolveStateDir(join(dir, 'a', 'b', 'c'), {}, dir)).toBe(join(dir, 'a', 'b', 'c'));
    expect(existsSync(join(dir, 'a', 'b', 'c'))).toBe(true);
  });

  it('replug agent --state-dir /proc/x: one line naming the directory, exit 1', async () => {
    await ensureBuilt();
    const started = Date.now();
    const result = await runCli(
      ['agent', '--state-dir', '/proc/replug-x', '--broker-port', '0', '--log-format', 'json'],
      { env: { HOME: dir }, timeoutMs: 10_000 },
    );
    expect(result.signal, `killed after ${Date.now() - started} ms: it hung`).toBeNull();
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^replug: state directory \/proc\/replug-x cannot be created \(ENOENT\)/);
  }, 60_000);
});
