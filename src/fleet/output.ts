/**
 * Script-facing output of `replug watch`: one NDJSON object per received message (`--json`), and the
 * `--expect` verdict for monitoring. Pure.
 */
import { parseTargetSpec, targetTopicKey } from '../usb/ids.js';
import type { ReduceResult } from './aggregate.js';
import type { FleetMessage, FleetState } from './types.js';

/**
 * The envelope is fixed ({broker, agent, kind, retained, receivedAt}); the validated payload sits under
 * `payload` untouched rather than being flattened, because info and health carry a `broker` field of their
 * own. Rejected messages become kind `rejected` with the reason, so a script can count them too.
 */
export function normalize(msg: FleetMessage, result: ReduceResult['outcome'], lateWill: boolean): object {
  const base = {
    broker: msg.broker,
    retained: msg.retained,
    receivedAt: msg.receivedAt,
    ...(msg.userProperties ? { userProperties: msg.userProperties } : {}),
  };
  if (!result.ok) {
    return {
      ...base,
      ...(result.agent ? { agent: result.agent } : {}),
      kind: 'rejected',
      reason: result.reason,
      detail: result.detail,
      topic: msg.topic,
    };
  }
  const v = result.value;
  if (v.kind === 'cleared') {
    return {
      ...base,
      agent: v.agent,
      kind: 'cleared',
      of: v.of,
      ...(v.targetKey ? { targetKey: v.targetKey } : {}),
    };
  }
  return {
    ...base,
    agent: v.agent,
    kind: v.kind,
    ...(v.kind === 'target' ? { targetKey: v.targetKey } : {}),
    ...(lateWill ? { lateWill: true } : {}),
    payload: v.payload,
  };
}

/**
 * `JSON.stringify(normalize(...))`, written out for the common case (an accepted payload): the same text,
 * without building the envelope object and its spreads per message (issue 17: NDJSON at stream rate).
 */
export function normalizedLine(
  msg: FleetMessage,
  result: ReduceResult['outcome'],
  lateWill: boolean,
): string {
  if (!result.ok || result.value.kind === 'cleared') return JSON.stringify(normalize(msg, result, lateWill));
  const v = result.value;
  const s = JSON.stringify;
  let line = `{"broker":${s(msg.broker)},"retained":${s(msg.retained)},"receivedAt":${s(msg.receivedAt)}`;
  if (msg.userProperties) line += `,"userProperties":${s(msg.userProperties)}`;
  line += `,"agent":${s(v.agent)},"kind":${s(v.kind)}`;
  if (v.kind === 'target') line += `,"targetKey":${s(v.targetKey)}`;
  if (lateWill) line += ',"lateWill":true';
  return `${line},"payload":${s(v.payload)}}`;
}

export interface ExpectVerdict {
  ok: boolean;
  /** One line per expected agent that is missing or offline. */
  problems: string[];
}

/**
 * `--expect AGENT`: met when the agent is known and every broker that carries it says online. Several
 * brokers carrying one id is either a bridge (they agree) or two hosts sharing a name (then one offline
 * copy is exactly what a monitor should flag).
 */
export function checkExpectations(state: FleetState, expected: readonly string[]): ExpectVerdict {
  const problems: string[] = [];
  for (const id of expected) {
    const copies = [...state.agents.values()].filter((a) => a.agent === id);
    if (copies.length === 0 || copies.every((a) => a.status === undefined)) {
      problems.push(`expected agent ${id} is missing (no retained status)`);
      continue;
    }
    for (const a of copies) {
      if (a.status?.state !== 'online') {
        const why = a.status ? `offline since session ${a.status.session}` : 'has no status';
        problems.push(`expected agent ${id} on ${a.broker} ${why}`);
      }
    }
  }
  return { ok: problems.length === 0, problems };
}

/**
 * `--target SPEC`: a predicate on target topic keys. `1209:0001` matches that vid:pid with or without a
 * serial; `1209:0001:ABC` only that serial. Returns an error string for a bad spec.
 */
export function targetMatcher(specs: readonly string[]): ((topicKey: string) => boolean) | string {
  const keys: { key: string; exact: boolean }[] = [];
  for (const text of specs) {
    const spec = parseTargetSpec(text);
    if (typeof spec === 'string') return spec;
    keys.push({ key: targetTopicKey(spec), exact: spec.serial !== undefined });
  }
  if (keys.length === 0) return () => true;
  return (topicKey) => keys.some((k) => topicKey === k.key || (!k.exact && topicKey.startsWith(`${k.key}-`)));
}
