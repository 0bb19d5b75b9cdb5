/**
 * The lines of the queue file, `<state-dir>/mqtt-events.jsonl` (one JSON object per line):
 *   {"meta":{"lastSeq":N,"dropped":D,"refused":R}}   first line of a rewritten file
 *   {"ev":{...EventPayload...}}                        an event, its seq and session inside
 *   {"ack":seq}                                        PUBACK received: done
 *   {"drop":seq}                                       dropped at the bound (oldest first): done, counted
 *   {"refused":seq}                                    negative PUBACK (MQTT 5 reason >= 0x80): done, counted
 * Files written before issue 10 have no `refused` and a meta without it; they read the same.
 *
 * Everything read back is validated before it is trusted (issue 10: a line `1`, `null`, `{"meta":null}`,
 * a seq of 1e300 or 2^53-1, a string or a negative number broke start-up or delivery): an event must pass
 * docs/schemas/event.schema.json, and every seq and counter must be a safe integer in range, so that
 * `lastSeq + 1` is always a new, exact number.
 */

import type { EventPayload } from '../payloads.js';
import { validatePayload } from '../schema.js';

/**
 * Highest seq an agent hands out (2^48, also the event schema's maximum): 8,900 years at 1,000 events a
 * second, and far enough below 2^53 that seq + 1 stays exact. A file claiming more is corrupt or hostile.
 */
export const MAX_SEQ = 2 ** 48;
/** Highest boot counter (src/agent/boot-counter.ts): one start a second for 68 years. */
export const MAX_SESSION = 2 ** 31 - 1;
/** Counters (dropped, refused) stay exact. */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

export interface Meta {
  lastSeq: number;
  dropped: number;
  refused: number;
}

export type Line =
  | { kind: 'meta'; meta: Meta }
  | { kind: 'ev'; event: EventPayload }
  | { kind: 'ack'; seq: number }
  | { kind: 'drop'; seq: number }
  | { kind: 'refused'; seq: number };

export type Decoded = { ok: true; line: Line } | { ok: false; reason: string };

export function encodeMeta(meta: Meta): string {
  return `${JSON.stringify({ meta })}\n`;
}

export function encodeEvent(event: EventPayload): string {
  return `${JSON.stringify({ ev: event })}\n`;
}

export function encodeDone(kind: 'ack' | 'drop' | 'refused', seq: number): string {
  return `${JSON.stringify({ [kind]: seq })}\n`;
}

export function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_SEQ;
}

function isCount(value: unknown, max = MAX_COUNT): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max;
}

/** One line (without its newline) to a validated record, or the reason it cannot be trusted. */
export function decodeLine(raw: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'not a JSON object' };
  const keys = Object.keys(value);
  if (keys.length !== 1) return { ok: false, reason: 'not one record' };
  const key = keys[0] as string;
  const body = (value as Record<string, unknown>)[key];
  switch (key) {
    case 'ev':
      return decodeEvent(body);
    case 'ack':
    case 'drop':
    case 'refused':
      return isSeq(body)
        ? { ok: true, line: { kind: key, seq: body } }
        : { ok: false, reason: `${key}: bad seq` };
    case 'meta':
      return decodeMeta(body);
    default:
      return { ok: false, reason: 'unknown record' };
  }
}

function decodeEvent(body: unknown): Decoded {
  const checked = validatePayload('event', body);
  if (!checked.ok) return { ok: false, reason: `event: ${checked.errors[0] ?? 'invalid'}` };
  const event = body as EventPayload;
  // The schema says integer >= 1; exactness needs more (1e300 is an "integer" to JSON Schema).
  if (!isSeq(event.seq)) return { ok: false, reason: 'event: seq out of range' };
  if (!Number.isSafeInteger(event.session) || event.session > MAX_SESSION)
    return { ok: false, reason: 'event: session out of range' };
  if (!Number.isSafeInteger(event.ts)) return { ok: false, reason: 'event: ts out of range' };
  return { ok: true, line: { kind: 'ev', event } };
}

function decodeMeta(body: unknown): Decoded {
  if (typeof body !== 'object' || body === null) return { ok: false, reason: 'meta: not an object' };
  const m = body as Record<string, unknown>;
  const refused = m.refused ?? 0;
  if (!isCount(m.lastSeq, MAX_SEQ) || !isCount(m.dropped) || !isCount(refused))
    return { ok: false, reason: 'meta: bad numbers' };
  return { ok: true, line: { kind: 'meta', meta: { lastSeq: m.lastSeq, dropped: m.dropped, refused } } };
}
