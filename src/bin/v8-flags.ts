/**
 * V8 flags for the long-running agent (issue 17, footprint). A replug storm allocates fast, and V8 answers
 * by doubling the young generation's semi-spaces up to 16 MB each: about 30 MB of RSS that an agent keeps
 * once the storm is over (the "RSS growth over 10,000 replug cycles" was that, not retained objects). With
 * a growth factor of 1 the semi-spaces stay at their initial 1 MB; objects that live longer are promoted
 * sooner, which costs a few more old-generation collections in a storm and no measurable idle CPU.
 *
 * The flag is read by V8 each time it would grow the young generation, so setting it at run time works
 * (unlike --max-semi-space-size, which only applies at heap set-up). Who wants V8's default back, or other
 * flags: `REPLUG_V8_FLAGS=` (empty: none) or `REPLUG_V8_FLAGS='--semi-space-growth-factor=2'`; any
 * semi-space flag of the user's own on node's command line or in NODE_OPTIONS also wins.
 */
export const DEFAULT_AGENT_V8_FLAGS = '--semi-space-growth-factor=1';

/** Commands that run for days and get the default flags; one-shot commands keep V8's defaults. */
const LONG_RUNNING = new Set(['agent']);

const USER_SEMI_SPACE = /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;

/** The flags to hand v8.setFlagsFromString for this invocation, or undefined for none. */
export function v8FlagsFor(
  argv: readonly string[],
  execArgv: readonly string[],
  env: Record<string, string | undefined>,
): string | undefined {
  const own = env.REPLUG_V8_FLAGS;
  if (own !== undefined) return own.trim() === '' ? undefined : own.trim();
  if (!LONG_RUNNING.has(argv[0] ?? '')) return undefined;
  if ([...execArgv, env.NODE_OPTIONS ?? ''].some((a) => USER_SEMI_SPACE.test(a))) return undefined;
  return DEFAULT_AGENT_V8_FLAGS;
}
