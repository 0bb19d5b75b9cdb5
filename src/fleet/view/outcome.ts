/**
 * A request's outcome as one status-line phrase for the terminal view (issue 18): `republish pi-7: ok,
 * 12 topics`, `reset pi-7 1209:0001: error REPLUG_HEAL_UNAVAILABLE ...`, `... no answer in 5 s`. Pure.
 */
import type { AskResult } from '../../control/ask.js';
import { type AgentRequest, describeRequest } from './keys.js';

/** How long the view waits for an answer: a republish is immediate, a reset climbs the recovery ladder. */
export const REQUEST_TIMEOUT_MS: Record<AgentRequest['action'], number> = { republish: 5000, reset: 30_000 };

function okDetail(data: unknown): string {
  if (!data || typeof data !== 'object') return '';
  const d = data as { topics?: unknown; step?: unknown; ms?: unknown };
  if (typeof d.topics === 'number') return `, ${d.topics} topics`;
  if (typeof d.step === 'string') return `, ${d.step}${typeof d.ms === 'number' ? ` in ${d.ms} ms` : ''}`;
  return '';
}

export function outcomeLine(r: AgentRequest, result: AskResult, timeoutMs: number): string {
  const what = describeRequest(r);
  const answer = result.answers[0];
  if (!answer) return `${what}: no answer in ${Math.round(timeoutMs / 1000)} s`;
  const { status, data, error } = answer.response;
  if (status === 'ok') return `${what}: ok${okDetail(data)}`;
  return `${what}: error ${error?.code ?? '?'} ${error?.message ?? ''}`.trimEnd();
}
