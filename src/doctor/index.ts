/**
 * The doctor's public API for other modules: the agent logs `summary` at start and publishes `info` on the
 * retained MQTT `info` topic; `replug relay` and `health` may read `verdict.relayRecommended`.
 */
import { type CollectOptions, collectFacts } from './facts.js';
import { type RuntimeInfo, runtimeInfo, summarize } from './format.js';
import { type DoctorRoots, defaultRoots, type RuntimeFacts } from './types.js';
import { type DoctorVerdict, judge } from './verdict.js';

export { type CollectOptions, collectFacts, type TryOpen } from './facts.js';
export { formatReport, type RuntimeInfo, runtimeInfo, summarize } from './format.js';
export { type DoctorRoots, defaultRoots, type RuntimeFacts } from './types.js';
export {
  type DetectionSource,
  type DoctorVerdict,
  judge,
  type SourceVerdict,
  type Works,
} from './verdict.js';

export interface RuntimeReport {
  facts: RuntimeFacts;
  verdict: DoctorVerdict;
  /** One line for the agent's start log. */
  summary: string;
  /** Compact, JSON-able, for the `info` topic. */
  info: RuntimeInfo;
}

/** Reads the facts once and derives everything from them. Never throws for missing files. */
export async function runtimeReport(
  roots: Partial<DoctorRoots> = {},
  env: Record<string, string | undefined> = {},
  options: CollectOptions = {},
): Promise<RuntimeReport> {
  const facts = await collectFacts({ ...defaultRoots, ...roots }, env, options);
  return { facts, verdict: judge(facts), summary: summarize(facts), info: runtimeInfo(facts) };
}
