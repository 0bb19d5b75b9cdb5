/**
 * `--driver ./my-driver.js`: loads a user's ES module whose default export is a SessionDriver or a
 * factory `({ log, options }) => SessionDriver | Promise<SessionDriver>`. The agent then owns restarts for
 * it. Every way this can go wrong ends as one REPLUG_DRIVER_LOAD line that names the file and the fix.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, errnoOf, ReplugError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { SessionDriver } from './types.js';

export interface LoadDriverOptions {
  /** Relative paths resolve against this (the agent passes process.cwd()). */
  cwd: string;
  log: Logger;
  /** Passed to a factory as `options` (e.g. parsed `--driver-option k=v`). */
  options?: Record<string, unknown>;
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
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
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
      candidate = await (candidate as (a: { log: Logger; options: Record<string, unknown> }) => unknown)({
        log: opts.log,
        options: opts.options ?? {},
      });
    } catch (err) {
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
