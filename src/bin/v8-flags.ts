/**
 * V8 flags for the long-running agent (issue 17, footprint: RSS over 10,000 replug cycles).
 *
 * - `--semi-space-growth-factor=1`: a replug storm allocates fast, and V8 answers by doubling the young
 *   generation's semi-spaces up to 16 MB each, about 30 MB of RSS that the agent keeps once the storm is
 *   over. With a factor of 1 they stay at their initial 1 MB.
 * - `--heap-growing-percent=50`: objects then reach the old generation sooner, and V8's default heap
 *   growing (up to 4x the live size for a small heap) let it fill with the storm's garbage before the next
 *   full collection: RSS swung between 62 and 89 MB over 1,000 cycles. 1.5x the live size keeps it flat
 *   (68-70 MB), for no more CPU per cycle (bench/footprint.mjs; the figures are in the README). For a
 *   heap this small the old generation still grows about 8 MB past live before a full collection
 *   (`--trace-gc`: 16.4 MB with 8.4 MB live, also with --optimize-for-size set at run time).
 *
 * Both are read by V8 each time it sizes a space, so setting them at run time works (unlike
 * --max-semi-space-size, which applies at heap set-up only). `REPLUG_V8_FLAGS` replaces the defaults
 * (empty: V8's own; or any flags, for any command), and a flag of the user's own on node's command line or
 * in NODE_OPTIONS wins over the default of the same family.
 */
import { type Clock, systemClock } from '../util/clock.js';

const DEFAULTS: readonly { flag: string; family: RegExp }[] = [
  {
    flag: '--semi-space-growth-factor=1',
    family: /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/,
  },
  { flag: '--heap-growing-percent=50', family: /--heap[-_]growing[-_]percent/ },
];
export const DEFAULT_AGENT_V8_FLAGS = DEFAULTS.map((d) => d.flag).join(' ');

/** Commands that run for days and get the default flags; one-shot commands keep V8's defaults. */
const LONG_RUNNING = new Set(['agent']);

/** The flags to hand v8.setFlagsFromString for this invocation, or undefined for none. */
export function v8FlagsFor(
  argv: readonly string[],
  execArgv: readonly string[],
  env: Record<string, string | undefined>,
): string | undefined {
  const own = env.REPLUG_V8_FLAGS;
  if (own !== undefined) return own.trim() === '' ? undefined : own.trim();
  if (!LONG_RUNNING.has(argv[0] ?? '')) return undefined;
  const flags = DEFAULTS.filter((d) => !userChose(d.family, execArgv, env)).map((d) => d.flag);
  return flags.length > 0 ? flags.join(' ') : undefined;
}

/** Whether the user set a flag of this family on node's command line or in NODE_OPTIONS. */
function userChose(
  family: RegExp,
  execArgv: readonly string[],
  env: Record<string, string | undefined>,
): boolean {
  return [...execArgv, env.NODE_OPTIONS ?? ''].some((a) => family.test(a));
}

/**
 * The agent starts without TurboFan, V8's optimizing compiler, and lets it back in once start-up is done
 * (issue 17, footprint). Start-up code runs once and gains nothing from being optimized, yet a handful of
 * functions that the ES module loader calls for every import (node's fileURLToPath, path.normalize) got
 * hot enough to be compiled, and that paged in 2.6 MB of the compiler's own machine code: an idle agent's
 * RSS carried it for good. With the compiler held back the agent starts interpreted and baseline-compiled
 * (Sparkplug), and a replug storm later is optimized as before. `--turbofan` is read at every tier-up
 * decision, so it can be set back at run time.
 *
 * Not held when REPLUG_V8_FLAGS is set (it replaces every default), or when the user chose the compiler's
 * tiers on node's command line or in NODE_OPTIONS (`--opt`, `--turbofan`, `--max-opt`, `--jitless`).
 */
export const OPTIMIZER_HOLD_FAMILY = /--(no-)?(turbofan|opt)\b|--max[-_]opt|--jitless/;

/** Whether this invocation starts with the optimizing compiler held back (see above). */
export function holdsOptimizer(
  argv: readonly string[],
  execArgv: readonly string[],
  env: Record<string, string | undefined>,
): boolean {
  if (env.REPLUG_V8_FLAGS !== undefined || !LONG_RUNNING.has(argv[0] ?? '')) return false;
  return !userChose(OPTIMIZER_HOLD_FAMILY, execArgv, env);
}

/** A start that never reports ready (stuck, or failing) still gets its compiler back after this. */
export const OPTIMIZER_HOLD_MAX_MS = 30_000;

/**
 * Holds the optimizing compiler back now and returns the release: call it when start-up is done. Once
 * only; the timer releases it if nobody does.
 */
export function holdOptimizer(
  setFlags: (flags: string) => void,
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'> = systemClock,
): () => void {
  setFlags('--no-turbofan');
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    clock.clearTimeout(fallback);
    setFlags('--turbofan');
  };
  const fallback = clock.setTimeout(release, OPTIMIZER_HOLD_MAX_MS);
  (fallback as { unref?: () => void }).unref?.(); // never what keeps the process alive
  return release;
}
