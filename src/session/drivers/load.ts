/**
 * `--driver ./my-driver.js`: loads a user's ES module whose default export is a SessionDriver or a
 * factory `({ log, options }) => SessionDriver | Promise<SessionDriver>`. The agent then owns restarts for
 * it. Every way this can go wrong ends as one REPLUG_DRIVER_LOAD line that names the file and the fix.
 *
 * Loading is bounded (issue 12): a module whose top-level await or factory never settles used to keep the
 * agent from starting, silently, deaf to SIGINT. The import and the factory each get `timeoutMs` (10 s by
 * default) and end at once when `signal` aborts; a promise that never settles cannot be cancelled, but
 * nothing waits for it any more.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, errnoOf, ReplugError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { type Clock, systemClock } from '../../util/clock.js';
import type { SessionDriver } from './types.js';

export interface LoadDriverOptions {
  /** Relative paths resolve against this (the agent passes process.cwd()). */
  cwd: string;
  log: Logger;
  /** Passed to a factory as `options` (e.g. parsed `--driver-option k=v`). */
  options?: Record<string, unknown>;
  /** Bound on the import and on the factory, each; 10 000 ms by default. */
  timeoutMs?: number;
  /** Aborted (SIGINT, SIGTERM): stop waiting for the module at once. */
  signal?: AbortSignal;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
}

export const DRIVER_LOAD_TIMEOUT_MS = 10_000;

type Bounded<T> = { kind: 'ok'; value: T } | { kind: 'timeout' } | { kind: 'aborted' };

/** `work` raced against the bound and the signal; its rejection passes through. */
function bounded<T>(work: Promise<T>, opts: LoadDriverOptions): Promise<Bounded<T>> {
  const clock = opts.clock ?? systemClock;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.resolve({ kind: 'aborted' });
  return new Promise<Bounded<T>>((resolve, reject) => {
    const finish = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      finish();
      resolve({ kind: 'aborted' });
    };
    const timer = clock.setTimeout(() => {
      finish();
      resolve({ kind: 'timeout' });
    }, opts.timeoutMs ?? DRIVER_LOAD_TIMEOUT_MS);
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        finish();
        resolve({ kind: 'ok', value });
      },
      (err: unknown) => {
        finish();
        reject(err);
      },
    );
  });
}

function unwrap<T>(r: Bounded<T>, spec: string, what: string, hint: string, opts: LoadDriverOptions): T {
  if (r.kind === 'ok') return r.value;
  if (r.kind === 'aborted') {
    throw new ReplugError(ErrorCodes.DRIVER_LOAD, `stopped while waiting for ${what} in ${spec}`, {
      cause: opts.signal?.reason,
    });
  }
  const s = Math.round((opts.timeoutMs ?? DRIVER_LOAD_TIMEOUT_MS) / 100) / 10;
  fail(`${what} in ${spec} did not settle within ${s} s`, hint);
}

const SHAPE_HINT = 'default-export { name, open, probe, close } or a factory ({ log, options }) => driver';

function fail(message: string, hint: string, cause?: unknown): never {
  throw new ReplugError(ErrorCodes.DRIVER_LOAD, message, cause === undefined ? { hint } : { hint, cause });
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

export async function loadDriver(spec: string, opts: LoadDriverOptions): Promise<SessionDriver> {
  const file = path.resolve(opts.cwd, spec);
  try {
    const s = await stat(file);
    if (!s.isFile())
      fail(`driver module ${spec} is not a file (${file})`, 'pass the path of a .js or .mjs file');
  } catch (err) {
    if (err instanceof ReplugError) throw err;
    if (errnoOf(err) === 'ENOENT')
      fail(
        `driver module ${spec} not found (looked at ${file})`,
        'check the path; it is resolved against the current directory',
      );
    fail(`driver module ${spec} cannot be read: ${firstLine(err)}`, 'check the file permissions', err);
  }

  let mod: { default?: unknown };
  try {
    const loading = import(pathToFileURL(file).href) as Promise<{ default?: unknown }>;
    mod = unwrap(
      await bounded(loading, opts),
      spec,
      'the module',
      'its top-level code (an await at module level) must finish; start slow work in open()',
      opts,
    );
  } catch (err) {
    if (err instanceof ReplugError) throw err;
    fail(
      `driver module ${spec} could not be loaded: ${firstLine(err)}`,
      'it must be an ES module (.mjs, or .js next to a package.json with "type": "module")',
      err,
    );
  }

  let candidate = mod.default;
  if (candidate === undefined) fail(`driver module ${spec} has no default export`, SHAPE_HINT);
  if (typeof candidate === 'function') {
    try {
      const made = Promise.resolve(
        (candidate as (a: { log: Logger; options: Record<string, unknown> }) => unknown)({
          log: opts.log,
          options: opts.options ?? {},
        }),
      );
      candidate = unwrap(
        await bounded(made, opts),
        spec,
        'the driver factory',
        'a factory must return a driver (or a promise that resolves); do slow work in open()',
        opts,
      );
    } catch (err) {
      if (err instanceof ReplugError) throw err;
      fail(
        `the driver factory in ${spec} threw: ${firstLine(err)}`,
        'fix the factory; it runs once at start',
        err,
      );
    }
  }
  return validate(spec, candidate);
}

function validate(spec: string, candidate: unknown): SessionDriver {
  if (!candidate || typeof candidate !== 'object') {
    fail(
      `driver module ${spec} exported ${candidate === null ? 'null' : typeof candidate}, not a driver`,
      SHAPE_HINT,
    );
  }
  const d = candidate as Record<string, unknown>;
  const missing = ['open', 'probe', 'close'].filter((m) => typeof d[m] !== 'function');
  if (missing.length > 0) fail(`driver module ${spec} does not implement ${missing.join(', ')}`, SHAPE_HINT);
  const interval = d.probeIntervalMs;
  if (
    interval !== undefined &&
    (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0)
  ) {
    fail(
      `driver module ${spec} has probeIntervalMs ${String(interval)}; expected a number >= 0`,
      'use 0 to disable probing',
    );
  }
  const driver = candidate as SessionDriver;
  const name = typeof d.name === 'string' && d.name ? d.name : path.basename(spec).replace(/\.[cm]?js$/, '');
  // Calls go through the original object so class-based drivers keep their `this`.
  const wrapped: SessionDriver = {
    name,
    open: (device, ctx) => driver.open(device, ctx),
    probe: (handle, ctx) => driver.probe(handle, ctx),
    close: (handle, ctx) => driver.close(handle, ctx),
  };
  return interval === undefined ? wrapped : { ...wrapped, probeIntervalMs: interval as number };
}
