/**
 * Where the agent keeps its boot counter and durable event queue. An explicit --state-dir must be
 * writable (clear error otherwise); the default is /var/lib/replug when writable (systemd StateDirectory,
 * containers with a volume), else $XDG_STATE_HOME/replug or ~/.local/state/replug.
 *
 * Not `mkdir(dir, { recursive: true })`: Node's recursive mkdir (MKDirpAsync/MKDirpSync in node_file.cc,
 * Node 20 and later) steps back to the parent on ENOENT and forward again when the parent exists, so a
 * parent that exists but cannot hold children loops forever at full CPU: `/proc/x` (procfs answers mkdir
 * with ENOENT) or a dangling symlink. `replug agent --state-dir /proc/x` hung that way and ignored
 * SIGINT (issue 12); test/hostile/state-dir.test.ts carries the reproduction. Here each missing component
 * is created with a plain mkdir, and any failure is final.
 */
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

/** Creates `dir` and its missing parents, one plain mkdir each; throws the errno of the first failure. */
export async function makeDirs(dir: string): Promise<void> {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let p = target; ; p = dirname(p)) {
    try {
      const s = await stat(p);
      if (!s.isDirectory()) throw Object.assign(new Error(`${p} is not a directory`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
      missing.push(p);
      if (dirname(p) === p) break;
    }
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p, { mode: 0o755 });
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      // Someone made it meanwhile; fine if it is a directory (stat throws ENOTDIR-like errors otherwise).
      if (!(await stat(p)).isDirectory()) throw err;
    }
  }
}

/**
 * Proves `dir` takes files by creating and removing one: access(W_OK) says yes to root on /proc and on
 * directories whose filesystem would refuse the write anyway.
 */
async function probeWrite(dir: string): Promise<void> {
  // Unique enough with the pid beside it ('wx' refuses a leftover); not node:crypto, which an agent with
  // --mqtt otherwise never loads (~2 MB of RSS, issue 17 footprint).
  const nonce = Math.floor(Math.random() * 0x1000000)
    .toString(16)
    .padStart(6, '0');
  const probe = join(dir, `.replug-write-test-${process.pid}-${nonce}`);
  const fh = await open(probe, 'wx', 0o600);
  await fh.close();
  await unlink(probe);
}

/** Why `dir` cannot hold the agent's state, or undefined when it can. */
async function problem(dir: string): Promise<{ text: string; cause: unknown } | undefined> {
  try {
    await makeDirs(dir);
  } catch (err) {
    const where = (err as { path?: unknown }).path;
    const at = typeof where === 'string' && where !== dir ? ` at ${where}` : '';
    return { text: `cannot be created (${errnoOf(err) ?? String(err)}${at})`, cause: err };
  }
  try {
    await probeWrite(dir);
  } catch (err) {
    return { text: `is not writable (${errnoOf(err) ?? String(err)})`, cause: err };
  }
  return undefined;
}

export async function resolveStateDir(
  explicit: string | undefined,
  env: Record<string, string | undefined>,
  home: string,
): Promise<string> {
  if (explicit !== undefined) {
    const why = await problem(explicit);
    if (!why) return explicit;
    throw new ReplugError(ErrorCodes.STATE_DIR, `state directory ${explicit} ${why.text}`, {
      hint: 'choose another with --state-dir or REPLUG_STATE_DIR, or fix its permissions',
      cause: why.cause,
    });
  }
  const candidates = ['/var/lib/replug', join(env.XDG_STATE_HOME ?? join(home, '.local', 'state'), 'replug')];
  for (const dir of candidates) {
    if (!(await problem(dir))) return dir;
  }
  throw new ReplugError(
    ErrorCodes.STATE_DIR,
    `no writable state directory (tried ${candidates.join(', ')})`,
    {
      hint: 'give one with --state-dir or REPLUG_STATE_DIR',
    },
  );
}
