/**
 * The `doctor` request's data: the very object `replug doctor --json` prints (src/commands/doctor.ts), read
 * fresh from the same roots the agent reads, so an operator gets the report without SSH.
 */
import { collectFacts, type DoctorRoots, judge, runtimeInfo, summarize } from '../doctor/index.js';

export async function doctorReport(
  roots: DoctorRoots,
  env: Record<string, string | undefined>,
): Promise<unknown> {
  const facts = await collectFacts(roots, env);
  return { summary: summarize(facts), info: runtimeInfo(facts), facts, verdict: judge(facts), roots };
}
