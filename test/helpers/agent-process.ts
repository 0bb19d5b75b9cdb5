/**
 * The real `replug agent` CLI as a child process, for end-to-end suites: what a user or systemd runs, with
 * signals, exit codes and the JSON log (`--log-format json`) read back line by line (the pino habit:
 * assert on fields, not on formatted text).
 *
 * The CLI runs from a private build (`node_modules/.cache/replug-e2e`), compiled once per change of
 * src/ or broker/ and shared by concurrent suites through a lock directory. Not `dist/`: other engineers
 * rebuild `dist/` while these suites run, and a half-written `dist/` would fail them for no reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'replug-e2e');
export const CLI_PATH = join(BUILD_DIR, 'src', 'bin', 'replug.js');
export const DEVNODE_DRIVER = join(REPO_ROOT, 'examples', 'drivers', 'devnode.mjs');

const STAMP = join(BUILD_DIR, '.stamp');
const LOCK = `${BUILD_DIR}.lock`;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function sourcesMtime(): number {
  const files = ['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => join(REPO_ROOT, f));
  return Math.max(newestMtime(join(REPO_ROOT, 'src')), ...files.map((f) => statSync(f).mtimeMs));
}

function upToDate(): boolean {
  return existsSync(CLI_PATH) && existsSync(STAMP) && statSync(STAMP).mtimeMs >= sourcesMtime();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Compiles src/ and broker/ into BUILD_DIR unless it is newer than every source file. tsc emits even
 * with type errors elsewhere in the tree (another engineer's half-done file): those are the typecheck's
 * business, so they are printed, not fatal; a missing CLI file is fatal.
 */
export async function ensureBuilt(): Promise<string> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (upToDate()) return CLI_PATH;
    mkdirSync(dirname(LOCK), { recursive: true });
    try {
      mkdirSync(LOCK, { recursive: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another suite is building; a lock older than 3 minutes belongs to a killed run.
      if (existsSync(LOCK) && Date.now() - statSync(LOCK).mtimeMs > 180_000)
        rmSync(LOCK, { recursive: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for the e2e build lock ${LOCK}`);
      await sleep(250);
      continue;
    }
    try {
      if (upToDate()) return CLI_PATH;
      const startedAt = Date.now();
      const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR], {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (d: string) => {
          output += d;
        });
        child.stderr?.setEncoding('utf8').on('data', (d: string) => {
          output += d;
        });
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, output }));
      });
      if (!existsSync(CLI_PATH))
        throw new Error(`e2e build produced no CLI (tsc ${result.code}):\n${result.output}`);
      if (result.code !== 0)
        process.stderr.write(
          `e2e build: tsc reported errors (emitted anyway):\n${result.output.slice(0, 2000)}\n`,
        );
      // Outside the repo's package scope (node_modules stops Node's package.json lookup): without this
      // copy the .js files would load as CommonJS, and `replug --version` would not find its version.
      copyFileSync(join(REPO_ROOT, 'package.json'), join(BUILD_DIR, 'package.json'));
      // Dated when the build began: a source saved while tsc ran is newer, so the next suite rebuilds.
      writeFileSync(STAMP, `${new Date(startedAt).toISOString()}\n`);
      utimesSync(STAMP, startedAt / 1000, startedAt / 1000);
      return CLI_PATH;
    } finally {
      rmSync(LOCK, { recursive: true, force: true });
    }
  }
}

/** A parsed pino line: level (30 info, 40 warn, 50 error), time, msg and the event's fields. */
export type LogLine = Record<string, unknown> & { level: number; time: number; msg: string };

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Parsed JSON log lines from stdout, in order. */
  readonly logs: LogLine[];
  /** stdout lines that were not JSON (there should be none with --log-format json). */
  readonly otherStdout: string[];
  stderr(): string;
  /** null while running. */
  exitStatus(): ExitStatus | null;
  /** Resolves with the first log line matching, looking at lines already read too. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  /** Resolves with check()'s first defined value, re-checked whenever log lines arrive. */
  waitUntil<T>(check: () => T | undefined | false, timeoutMs?: number, what?: string): Promise<T>;
  /** Log lines whose msg matches. */
  messages(pattern: RegExp): LogLine[];
  kill(signal: NodeJS.Signals): void;
  exited(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGTERM (a clean stop) and wait for the exit; SIGKILL if it does not exit within timeoutMs. */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  /** Everything it printed, for failure messages. */
  transcript(): string;
}

export interface SpawnOptions {
  /** The child's whole environment besides PATH (a clean env: the runner's REPLUG_* must not leak in). */
  env?: Record<string, string>;
}

/** Spawns `node <cli> <args>` (args start with the command, e.g. `agent`). Call ensureBuilt() first. */
export function spawnCli(args: readonly string[], options: SpawnOptions = {}): AgentProcess {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const otherStdout: string[] = [];
  let stderr = '';
  let partial = '';
  let status: ExitStatus | null = null;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        otherStdout.push(line);
      }
    }
    wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exit = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => {
      status = { code, signal };
      resolve(status);
      wake();
    });
  });

  const transcript = () =>
    [
      ...logs.map((l) => `${l.level} ${l.msg}`),
      ...otherStdout.map((l) => `stdout: ${l}`),
      stderr ? `stderr: ${stderr}` : '',
    ]
      .join('\n')
      .slice(-4000);

  function waitForLog(
    predicate: (line: LogLine) => boolean,
    timeoutMs = 10_000,
    what = 'a log line',
  ): Promise<LogLine> {
    let looked = 0;
    return waitUntil(
      () => {
        for (; looked < logs.length; looked++) {
          const line = logs[looked] as LogLine;
          if (predicate(line)) return line;
        }
        return undefined;
      },
      timeoutMs,
      what,
    );
  }

  function waitUntil<T>(
    check: () => T | undefined | false,
    timeoutMs = 10_000,
    what = 'a condition',
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined && value !== false) {
          finish();
          resolve(value);
          return;
        }
        if (status) {
          finish();
          reject(new Error(`agent exited (${JSON.stringify(status)}) before ${what}:\n${transcript()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${transcript()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(attempt);
      };
      waiters.add(attempt);
      attempt();
    });
  }

  async function exited(timeoutMs = 15_000): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`agent did not exit within ${timeoutMs} ms:\n${transcript()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    child,
    pid: child.pid ?? -1,
    logs,
    otherStdout,
    stderr: () => stderr,
    exitStatus: () => status,
    waitForLog,
    waitUntil,
    messages: (pattern) => logs.filter((l) => pattern.test(String(l.msg))),
    kill(signal) {
      if (!status) child.kill(signal);
    },
    exited,
    async stop(timeoutMs = 15_000) {
      if (status) return status;
      child.kill('SIGTERM');
      try {
        return await exited(timeoutMs);
      } catch (err) {
        child.kill('SIGKILL');
        await exit;
        throw err;
      }
    },
    transcript,
  };
}

export interface AgentOnTreeOptions {
  id: string;
  sysfsRoot: string;
  devfsRoot: string;
  stateDir: string;
  /** `--mqtt URL`; without it the embedded broker listens on a free port (`--broker-port 0`). */
  mqtt?: string;
  /** Extra flags (targets, driver, intervals...). */
  extra?: readonly string[];
  env?: Record<string, string>;
}

/**
 * `replug agent` on a fake tree with JSON logs at debug level (so every published event is also logged
 * with its `event` field, which the suites count against what the broker delivered).
 */
export function spawnAgent(options: AgentOnTreeOptions): AgentProcess {
  return spawnCli(
    [
      'agent',
      '--log-format',
      'json',
      '--log-level',
      'debug',
      '--id',
      options.id,
      '--sysfs-root',
      options.sysfsRoot,
      '--devfs-root',
      options.devfsRoot,
      '--state-dir',
      options.stateDir,
      ...(options.mqtt ? ['--mqtt', options.mqtt] : ['--broker-port', '0']),
      ...(options.extra ?? []),
    ],
    { env: { HOME: options.stateDir, ...options.env } },
  );
}

/** The embedded broker's URL, from its "broker listening on mqtt://127.0.0.1:PORT" line. */
export async function embeddedBrokerUrl(agent: AgentProcess, timeoutMs = 15_000): Promise<string> {
  const line = await agent.waitForLog(
    (l) => /^broker listening on mqtt:\/\//.test(l.msg),
    timeoutMs,
    'the embedded broker to listen',
  );
  const url = /^broker listening on (mqtt:\/\/[^\s]+)/.exec(line.msg)?.[1];
  if (!url) throw new Error(`no URL in "${line.msg}"`);
  return url;
}

/** Runs the CLI to completion (for flags and errors); SIGKILLs it after timeoutMs. */
export async function runCli(
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<ExitStatus & { stdout: string; stderr: string; logs: LogLine[] }> {
  const proc = spawnCli(args, options);
  const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const status = await proc.exited((options.timeoutMs ?? 20_000) + 5000);
  clearTimeout(timer);
  return { ...status, stdout: proc.otherStdout.join('\n'), stderr: proc.stderr(), logs: proc.logs };
}

/** Log lines carrying an agent event (`event` field), as logged by src/agent/features/log.ts. */
export function loggedEvents(agent: AgentProcess, type?: string): LogLine[] {
  return agent.logs.filter(
    (l) => typeof l.event === 'string' && l.module === undefined && (type === undefined || l.event === type),
  );
}
