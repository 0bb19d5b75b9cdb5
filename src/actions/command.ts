/**
 * Runs one action command (`sh -c CMD`) bounded in time and in output: after `timeoutMs` its whole process
 * group gets SIGTERM, and SIGKILL 2 s later (a `docker restart` stuck on a daemon must not pile up); at most
 * `maxLines` lines of its output reach the log, each cut to `maxLineChars`, and the rest are counted.
 */
import { spawn } from 'node:child_process';
import type { Clock } from '../util/clock.js';

export interface CommandResult {
  outcome: 'ok' | 'failed' | 'timeout';
  exitCode?: number;
  signal?: string;
  ms: number;
  /** Spawn failure (sh missing). */
  error?: string;
}

export interface RunCommandOptions {
  command: string;
  env: Record<string, string>;
  timeoutMs: number;
  clock: Clock;
  /** One line of output (stream: stdout or stderr). */
  line(stream: 'stdout' | 'stderr', text: string): void;
  /** Lines left out beyond maxLines. */
  cut?(count: number): void;
  maxLines?: number;
  maxLineChars?: number;
  /** The base environment (process.env by default). */
  baseEnv?: NodeJS.ProcessEnv;
}

const KILL_GRACE_MS = 2000;

function lineReader(
  o: RunCommandOptions,
  stream: 'stdout' | 'stderr',
  budget: { left: number; cut: number },
) {
  let pending = '';
  const max = o.maxLineChars ?? 500;
  const emit = (text: string) => {
    if (budget.left <= 0) {
      budget.cut++;
      return;
    }
    budget.left--;
    o.line(stream, text.length > max ? `${text.slice(0, max)}…` : text);
  };
  return {
    data(chunk: Buffer) {
      pending += chunk.toString('utf8');
      // Bound the partial line too: a command printing without newlines must not grow memory.
      if (pending.length > 64 * 1024) pending = pending.slice(0, max + 1);
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) emit(p);
    },
    end() {
      if (pending) emit(pending);
      pending = '';
    },
  };
}

export function runCommand(o: RunCommandOptions): Promise<CommandResult> {
  const started = o.clock.monotonic();
  const ms = () => Math.round(o.clock.monotonic() - started);
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', o.command], {
      env: { ...(o.baseEnv ?? process.env), ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const budget = { left: o.maxLines ?? 20, cut: 0 };
    const out = lineReader(o, 'stdout', budget);
    const err = lineReader(o, 'stderr', budget);
    child.stdout.on('data', out.data);
    child.stderr.on('data', err.data);
    let timedOut = false;
    const group = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    let kill: ReturnType<Clock['setTimeout']> | undefined;
    const timer = o.clock.setTimeout(() => {
      timedOut = true;
      group('SIGTERM');
      kill = o.clock.setTimeout(() => group('SIGKILL'), KILL_GRACE_MS);
    }, o.timeoutMs);
    child.on('error', (e) => {
      o.clock.clearTimeout(timer);
      resolve({ outcome: 'failed', ms: ms(), error: e.message });
    });
    child.on('close', (code, signal) => {
      o.clock.clearTimeout(timer);
      if (kill) o.clock.clearTimeout(kill);
      out.end();
      err.end();
      if (budget.cut > 0) o.cut?.(budget.cut);
      const base = { ms: ms(), ...(code !== null ? { exitCode: code } : {}), ...(signal ? { signal } : {}) };
      if (timedOut) resolve({ ...base, outcome: 'timeout' });
      else resolve({ ...base, outcome: code === 0 ? 'ok' : 'failed' });
    });
  });
}
