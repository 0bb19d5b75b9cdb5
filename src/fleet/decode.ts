/**
 * Turns raw MQTT bytes into a checked payload or a reason why not. Everything here treats the payload as
 * hostile: anyone allowed to publish under replug/# (a broken agent, a fuzzer, a misconfigured bridge) must
 * not crash `replug watch` or touch another agent's state.
 */

import { AGENT_EVENT_NAMES } from '../events.js';
import type { PayloadKind } from '../mqtt/schema.js';
import { validatePayload } from '../mqtt/schema.js';
import { parseTopic } from '../mqtt/topics.js';
import { parseTargetSpec, targetTopicKey } from '../usb/ids.js';
import type { Accepted, RejectReason } from './types.js';

/** Default payload cap: far above any real agent payload (a devices list of 127 devices is ~40 KiB). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;

/** Event types this build understands; docs/topics.md: consumers ignore the others. */
export const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set(AGENT_EVENT_NAMES);

export type Decoded =
  | { ok: true; value: Accepted }
  | { ok: false; reason: RejectReason; detail: string; agent?: string };

// fatal: invalid UTF-8 is a broken payload, not something to paper over with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeMessage(
  topic: string,
  payload: Uint8Array,
  maxBytes = DEFAULT_MAX_PAYLOAD_BYTES,
): Decoded {
  const parsed = parseTopic(topic);
  if (!parsed) return { ok: false, reason: 'bad-topic', detail: 'not a replug/<agent>/<kind> topic' };
  const { agent } = parsed;
  const kind: PayloadKind = parsed.kind;
  const targetKey = parsed.kind === 'target' ? parsed.targetKey : undefined;
  const fail = (reason: RejectReason, detail: string): Decoded => ({ ok: false, reason, detail, agent });

  if (payload.length > maxBytes) return fail('oversized', `${payload.length} bytes > ${maxBytes}`);
  // An empty retained payload is how MQTT deletes a retained message (3.1.1 §3.3.1.3).
  if (payload.length === 0) {
    return { ok: true, value: { kind: 'cleared', agent, of: kind, ...(targetKey ? { targetKey } : {}) } };
  }
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(payload));
  } catch (err) {
    return fail('not-json', err instanceof Error ? err.message : 'unparsable');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return fail('schema', 'payload is not a JSON object');
  }
  if (kind === 'event') {
    const type = (json as { type?: unknown }).type;
    if (typeof type === 'string' && !KNOWN_EVENT_TYPES.has(type)) {
      return fail('unknown-event', `event type ${type.slice(0, 40)}`);
    }
  }
  let verdict: ReturnType<typeof validatePayload>;
  try {
    verdict = validatePayload(kind, json, { firstError: true });
  } catch (err) {
    // Deeply nested input can exhaust the validator's stack; it is still just a bad payload.
    return fail('schema', err instanceof Error ? err.message : 'validator failed');
  }
  if (!verdict.ok) return fail('schema', verdict.errors.slice(0, 3).join('; '));
  return check(agent, kind, targetKey, json as Record<string, unknown>);
}

function check(
  agent: string,
  kind: PayloadKind,
  targetKey: string | undefined,
  json: Record<string, unknown>,
): Decoded {
  if (kind === 'info' && json.agent !== agent) {
    return { ok: false, reason: 'agent-mismatch', detail: `info.agent is ${String(json.agent)}`, agent };
  }
  if (kind === 'target') {
    const spec = parseTargetSpec(String(json.target));
    if (typeof spec === 'string' || targetTopicKey(spec) !== targetKey) {
      return { ok: false, reason: 'target-mismatch', detail: `payload target ${String(json.target)}`, agent };
    }
    return { ok: true, value: { kind, agent, targetKey: targetKey ?? '', payload: json as never } };
  }
  return { ok: true, value: { kind, agent, payload: json } as Accepted };
}

/** A topic as a warning line may show it: printable, bounded. */
export function sanitizeTopic(topic: string, max = 80): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point (terminal injection).
  const clean = topic.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
