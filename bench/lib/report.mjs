/**
 * One way for every benchmark to print a figure: name, value, goal, PASS/FAIL and the counts it rests
 * on, on one line. bench/run.mjs counts the PASS and FAIL lines of every benchmark for its summary.
 */
import { readFileSync } from 'node:fs';

/**
 * `figure('idle RSS, embedded broker', 58.1, 'MB', { max: 64 }, '5 samples over 5 s')`.
 * goal: { max } (figure <= max), { min } (figure >= min), or undefined (printed, no verdict).
 * A figure of undefined or NaN means it could not be measured: always FAIL, with `counts` saying why.
 */
export function figure(name, value, unit, goal, counts = '') {
  const measured = typeof value === 'number' && Number.isFinite(value);
  let verdict = '';
  let goalText = '';
  if (goal?.max !== undefined) goalText = `goal <= ${goal.max}${unit ? ` ${unit}` : ''}`;
  if (goal?.min !== undefined) goalText = `goal >= ${goal.min}${unit ? ` ${unit}` : ''}`;
  if (goal !== undefined) {
    const ok =
      measured &&
      (goal.max === undefined || value <= goal.max) &&
      (goal.min === undefined || value >= goal.min);
    verdict = ok ? 'PASS' : 'FAIL';
  } else if (!measured) {
    verdict = 'FAIL';
  }
  const shown = measured ? `${round(value)}${unit ? ` ${unit}` : ''}` : 'not measured';
  const parts = [`  ${name}: ${shown}`];
  if (goalText) parts.push(goalText);
  if (verdict) parts.push(verdict);
  if (counts) parts.push(`(${counts})`);
  console.log(parts.join('  '));
  return verdict !== 'FAIL';
}

/** A check that is not a number (counts exact, every session up): PASS/FAIL with what was counted. */
export function check(name, ok, counts) {
  console.log(`  ${name}: ${ok ? 'PASS' : 'FAIL'}  (${counts})`);
  return ok;
}

function round(v) {
  if (Math.abs(v) >= 100) return Math.round(v);
  if (Math.abs(v) >= 10) return Math.round(v * 10) / 10;
  return Math.round(v * 100) / 100;
}

export function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))];
}

/**
 * Current and peak RSS of a live process, in MB, from /proc (Linux), with the current RSS split as the
 * kernel counts it: file-backed pages (the node binary's code and data and the shared libraries, shared
 * with every node process and dropped at no cost) and anonymous pages (V8's heap, malloc, stacks: the
 * process's own).
 */
export function procMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return {
      rssMb: kb('VmRSS') / 1024,
      peakMb: kb('VmHWM') / 1024,
      fileMb: kb('RssFile') / 1024,
      anonMb: kb('RssAnon') / 1024,
    };
  } catch {
    return { rssMb: Number.NaN, peakMb: Number.NaN, fileMb: Number.NaN, anonMb: Number.NaN };
  }
}
