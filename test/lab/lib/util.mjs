// Small helpers shared by the lab's host-side scripts (fetch, initramfs, vm, run). Plain Node ESM: the
// lab runs outside vitest and before/independently of the TypeScript build.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAB_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = dirname(dirname(LAB_DIR));
export const CACHE_DIR = process.env.REPLUG_LAB_CACHE ?? join(LAB_DIR, 'cache');
export const RESULTS_DIR = join(LAB_DIR, 'results');
export const IS_CI = process.env.CI === 'true' || process.env.CI === '1';

const t0 = Date.now();
export function log(...args) {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  console.error(`[lab ${s}s]`, ...args);
}

export function ensureDir(p) {
  mkdirSync(p, { recursive: true });
  return p;
}

/** Synchronous exec that returns stdout as a string; throws with stderr on failure. */
export function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
}

/** Async exec, resolving { code, stdout, stderr }; rejects only when asked (check: true). */
export function run(cmd, args, { check = true, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (check && code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

export function which(bin) {
  try {
    return sh('sh', ['-c', `command -v ${bin}`]).trim() || null;
  } catch {
    return null;
  }
}

export function hash(...parts) {
  const h = createHash('sha256');
  for (const p of parts)
    h.update(typeof p === 'string' || Buffer.isBuffer(p) ? p : JSON.stringify(p)).update('\0');
  return h.digest('hex').slice(0, 16);
}

export function exists(p) {
  return existsSync(p);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A missing prerequisite: under CI it fails the run, elsewhere the lab is skipped with this message. */
export class LabPrerequisiteError extends Error {
  constructor(message, hint) {
    super(message);
    this.name = 'LabPrerequisiteError';
    this.hint = hint;
  }
}
