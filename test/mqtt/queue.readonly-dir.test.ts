/**
 * The durable queue in an unprivileged process whose state dir is made read-only with chmod a-w while it
 * runs (issue 10: "read-only dir: 401 stuck"). Writes to the open queue file still work; what the
 * directory refuses is the rewrite's temp file and rename, then the seq mark's. Delivery must go on, the
 * failure be said once, and the file stay bounded (rewritten in place once no pending event has it as its
 * only copy). Needs root to drop to uid 65534; skipped loudly otherwise, a failure under CI=true.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DIR, ensureBuilt, REPO_ROOT } from '../helpers/agent-process.js';
import { type AedesHandle, record, startAedes } from './helpers.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  const why = 'test/mqtt/queue.readonly-dir.test.ts needs root (to run the queue as uid 65534)';
  if (process.env.CI === 'true') throw new Error(`${why}; CI runs as root`);
  console.warn(`\n*** SKIPPED: ${why} ***\n`);
}

const TOPIC = 'replug/ro/event';
const NOBODY = 65534;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

interface Child {
  send(line: string): Promise<Record<string, unknown>>;
  logs: { level: number; module?: string; msg: string }[];
}

function startChild(stateDir: string, url: string): Promise<Child> {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'test/helpers/queue-child.mjs'), BUILD_DIR, stateDir, url, TOPIC],
    { cwd: REPO_ROOT, uid: NOBODY, gid: NOBODY, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const answers: Record<string, unknown>[] = [];
  const waiting: ((a: Record<string, unknown>) => void)[] = [];
  const logs: Child['logs'] = [];
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    const a = JSON.parse(l) as Record<string, unknown>;
    const w = waiting.shift();
    if (w) w(a);
    else answers.push(a);
  });
  let stderr = '';
  readline.createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => {
    try {
      logs.push(JSON.parse(l));
    } catch {
      stderr += `${l}\n`;
    }
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const a = answers.shift();
      if (a) return resolve(a);
      const timer = setTimeout(() => reject(new Error(`queue child did not answer: ${stderr}`)), 15_000);
      waiting.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  return next().then(() => ({
    logs,
    send(line: string) {
      child.stdin?.write(`${line}\n`);
      return next();
    },
  }));
}

let aedes: AedesHandle;

beforeAll(async () => {
  if (isRoot) await ensureBuilt();
}, 240_000);

describe.skipIf(!isRoot)('durable queue in a read-only state dir (chmod, unprivileged)', () => {
  it('keeps delivering, says so once, stays bounded, recovers when the dir is writable again', async () => {
    aedes = await startAedes();
    cleanups.push(() => aedes.close());
    const recorder = await record(aedes.url, TOPIC);
    cleanups.push(() => recorder.close());
    const base = mkdtempSync(path.join(os.tmpdir(), 'replug-queue-ro-'));
    cleanups.push(() => rmSync(base, { recursive: true, force: true }));
    chmodSync(base, 0o755);
    const stateDir = path.join(base, 'state');
    mkdirSync(stateDir);
    chownSync(stateDir, NOBODY, NOBODY);
    const child = await startChild(stateDir, aedes.url);
    const delivered = (n: number) => recorder.until((m) => m.length >= n, 15_000, `${n} events`);
    await child.send('push 20');
    await delivered(20);
    chmodSync(stateDir, 0o555);
    for (let i = 1; i <= 6; i++) {
      await child.send('push 250'); // past the compaction slack (1000 lines) twice over
      await delivered(20 + 250 * i);
    }
    expect(recorder.messages.map((m) => m.json.seq)).toEqual(Array.from({ length: 1520 }, (_, i) => i + 1));
    let stats = (await child.send('stats')) as { stats: Record<string, unknown>; fileLines: number };
    const deadline = Date.now() + 5000;
    while ((stats.stats.disk as { state: string }).state !== 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      stats = (await child.send('stats')) as typeof stats;
    }
    expect(stats.stats).toMatchObject({ depth: 0, disk: { state: 'ok', error: 'EACCES' } });
    expect(stats.fileLines).toBeLessThan(1000);
    const warnings = child.logs.filter((l) => l.level >= 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/cannot write the event queue file .*EACCES/);
    chmodSync(stateDir, 0o755);
    await child.send('push 5');
    await delivered(1525);
    expect(await child.send('close')).toEqual({ closed: true });
  });
});
