/**
 * Spawn the real Debian mosquitto_sub / mosquitto_pub (package mosquitto-clients) and collect their output.
 * Shared by every suite that talks to a broker through the reference clients.
 *
 * Prerequisite policy (team rule): under CI=true a missing binary FAILS the suite; on a developer machine the
 * suite may skip, with a loud message on stderr. Use `clientsAvailable()` with `describe.skipIf(...)`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Absolute path of an executable on PATH (plus the sbin dirs, where Debian puts `mosquitto`). */
export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(path.delimiter), ...EXTRA_DIRS].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/**
 * True when every named binary exists. When one is missing: throws under CI=true (the suite must fail,
 * never skip), otherwise prints a loud warning and returns false so the caller can skip.
 */
export function requireExecutables(names: readonly string[], suite: string, aptPackages: string): boolean {
  const missing = names.filter((n) => findExecutable(n) === undefined);
  if (missing.length === 0) return true;
  const message = `${suite}: missing ${missing.join(', ')} (apt-get install -y ${aptPackages})`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true forbids skipping`);
  process.stderr.write(`\n!!! SKIPPING ${message}\n\n`);
  return false;
}

/** mosquitto_sub and mosquitto_pub present (or the CI failure raised). */
export function clientsAvailable(suite: string): boolean {
  return requireExecutables(['mosquitto_sub', 'mosquitto_pub'], suite, 'mosquitto-clients');
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs mosquitto_pub to completion. `stdin` is written then closed (for `-s` / `-l`). A publish the broker
 * refuses under MQTT 3.1.1 is NOT an error for mosquitto_pub (3.1.1 has no negative PUBACK): check the
 * subscriber side, not this exit code, to prove an ACL denial.
 */
export function mosquittoPub(
  args: readonly string[],
  options: { timeoutMs?: number; stdin?: string } = {},
): Promise<RunResult> {
  const child = spawn(findExecutable('mosquitto_pub') ?? 'mosquitto_pub', args, {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const done = collect(child, options.timeoutMs ?? 10_000);
  // When the broker refuses the connection, mosquitto_pub exits before reading stdin and the write fails
  // with EPIPE. Without a listener that 'error' is unhandled and crashes the test run; the exit code and
  // stderr collected above already tell what happened.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(options.stdin ?? '');
  return done;
}

/** Runs mosquitto_sub to completion: give it `-C n` and/or `-W seconds` so it ends by itself. */
export function mosquittoSubOnce(
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = spawn(findExecutable('mosquitto_sub') ?? 'mosquitto_sub', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, options.timeoutMs ?? 15_000);
}

// mosquitto_sub -d prints its protocol trace on stdout, interleaved with messages. These are its trace
// lines (mosquitto 2.0 client/sub_client.c): "Client <id> sending|received <PACKET>" and "Subscribed (mid: n): q".
const TRACE_LINE = /^(Client \S+ (sending|received) [A-Z]+|Subscribed \(mid: \d+\):)/;
const SUBACK_LINE = /^Subscribed \(mid: \d+\): (.+)$/;

export interface SubscriberHandle {
  readonly child: ChildProcess;
  /** Message lines (trace lines removed), in arrival order. */
  readonly lines: string[];
  /** SUBACK return codes, one array per SUBACK (128 = refused under MQTT 3.1.1). */
  readonly grants: number[][];
  stderr(): string;
  /** Resolves once the broker's SUBACK arrived: publishing after this cannot race the subscription. */
  subscribed(timeoutMs?: number): Promise<number[]>;
  /** Resolves when at least `count` message lines arrived; rejects with what did arrive on timeout. */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the exit status (for -C / -W runs or a refused CONNECT). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running mosquitto_sub with `-d` added so `subscribed()` can wait for the SUBACK.
 * Pass `-v` or `-F` in `args` to choose the message format.
 */
export function startSubscriber(args: readonly string[]): SubscriberHandle {
  // mosquitto_sub prints its -d trace with stdio, fully buffered on a pipe: without line buffering the
  // SUBACK line would only appear at exit. stdbuf (coreutils) switches stdout to line mode via LD_PRELOAD.
  const sub = findExecutable('mosquitto_sub') ?? 'mosquitto_sub';
  const stdbuf = findExecutable('stdbuf');
  const argv = stdbuf ? [stdbuf, '-oL', sub, '-d', ...args] : [sub, '-d', ...args];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const grants: number[][] = [];
  let stderr = '';
  let partial = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      const suback = SUBACK_LINE.exec(line);
      if (suback?.[1]) grants.push(suback[1].split(',').map((q) => Number(q.trim())));
      else if (!TRACE_LINE.test(line)) lines.push(line);
    }
    wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      resolve({ code, signal });
      wake();
    });
  });
  let exitedFlag = false;
  void exit.then(() => {
    exitedFlag = true;
  });

  function waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (exitedFlag) {
          finish();
          reject(new Error(`mosquitto_sub exited before ${what()}; stderr: ${stderr.trim()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}; stderr: ${stderr.trim()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(attempt);
      };
      waiters.add(attempt);
      attempt();
    });
  }

  return {
    child,
    lines,
    grants,
    stderr: () => stderr,
    subscribed: (timeoutMs = 5000) =>
      waitUntil(
        () => grants[0],
        timeoutMs,
        () => 'SUBACK',
      ),
    waitForLines: (count, timeoutMs = 5000) =>
      waitUntil(
        () => (lines.length >= count ? [...lines] : undefined),
        timeoutMs,
        () => `${count} line(s) (got ${JSON.stringify(lines)})`,
      ),
    exited: () => exit,
    async stop() {
      if (!exitedFlag) child.kill('SIGTERM');
      await exit;
    },
  };
}
