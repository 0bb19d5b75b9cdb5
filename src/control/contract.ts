/**
 * The request/response contract (issue 18), after zigbee2mqtt's `bridge/request/*` -> `bridge/response/*`:
 *
 *   request   replug/<id>/request/<action>      (or replug/_fleet/request/<action>: every agent)
 *   response  replug/<id>/response/<action>     {status, data?, error?: {code, message}, transaction?, ts}
 *
 * Pure: topics, the request's validation and the response's shape. `_fleet` cannot be an agent id (ids are
 * [a-z0-9-]+, src/mqtt/topics.ts), so the fleet topic never collides with an agent's root.
 */
import { TOPIC_ROOT } from '../mqtt/topics.js';
import { RequestCodes } from './codes.js';

export const FLEET = '_fleet';

/** Requests are a few fields; anything larger is refused before it is parsed (a hostile 256 MB publish). */
export const MAX_REQUEST_BYTES = 16 * 1024;

/** Default bound on a request's age (its `ts`): a queued or replayed request does not fire minutes later. */
export const DEFAULT_MAX_AGE_MS = 60_000;

export const ACTIONS = ['republish', 'rescan', 'reset', 'restart', 'doctor', 'list', 'forget'] as const;
export type Action = (typeof ACTIONS)[number];

export function isAction(name: string): name is Action {
  return (ACTIONS as readonly string[]).includes(name);
}

/** What an action topic level may be echoed as; anything else answers on `response/_invalid`. */
const ACTION_LEVEL = /^[a-z0-9_-]{1,64}$/;

export const controlTopics = {
  request: (agent: string, action: string) => `${TOPIC_ROOT}/${agent}/request/${action}`,
  response: (agent: string, action: string) => `${TOPIC_ROOT}/${agent}/response/${action}`,
  fleetRequest: (action: string) => `${TOPIC_ROOT}/${FLEET}/request/${action}`,
  /** What an agent subscribes to. */
  agentFilters: (agent: string) => [`${TOPIC_ROOT}/${agent}/request/+`, `${TOPIC_ROOT}/${FLEET}/request/+`],
};

/** `replug/<agent or _fleet>/request/<action>` -> its parts; undefined for any other topic. */
export function parseRequestTopic(topic: string): { to: string; action: string } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== TOPIC_ROOT || parts[2] !== 'request') return undefined;
  const to = parts[1] as string;
  const level = parts[3] as string;
  return { to, action: ACTION_LEVEL.test(level) ? level : '_invalid' };
}

export type Transaction = string | number;

export interface ControlRequest {
  transaction?: Transaction;
  /** Wall-clock ms the requester sent it. */
  ts?: number;
  /** A target key, `vvvv:pppp[:SERIAL]` as the CLI prints it, or its topic form `vvvv-pppp[-serial]`. */
  target?: string;
  /** reset: one step of the recovery ladder instead of the whole ladder. */
  step?: string;
  /** forget: a device key (`serial:...`, `port:...`) instead of a target. */
  device?: string;
}

export type ParsedRequest =
  | { ok: true; request: ControlRequest }
  | { ok: false; code: string; message: string; transaction?: Transaction };

const FIELDS = new Set(['transaction', 'ts', 'target', 'step', 'device']);
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point (terminal injection).
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]*$/;

function isTransaction(v: unknown): v is Transaction {
  if (typeof v === 'string') return v.length >= 1 && v.length <= 128 && PRINTABLE.test(v);
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function shortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= max && PRINTABLE.test(v);
}

function fail(code: string, message: string, transaction?: unknown): ParsedRequest {
  return isTransaction(transaction)
    ? { ok: false, code, message, transaction }
    : { ok: false, code, message };
}

/** What is wrong with one field, or undefined. */
function fieldProblem(name: string, v: unknown): string | undefined {
  switch (name) {
    case 'transaction':
      return isTransaction(v)
        ? undefined
        : 'transaction must be a string of 1..128 printable characters or an integer';
    case 'ts':
      return Number.isSafeInteger(v) && (v as number) >= 0
        ? undefined
        : 'ts must be milliseconds since the epoch';
    case 'target':
    case 'device':
      return shortString(v, 160) ? undefined : `${name} must be a string of 1..160 printable characters`;
    case 'step':
      return shortString(v, 64) ? undefined : 'step must be a string of 1..64 printable characters';
    default:
      return `unknown field ${JSON.stringify(name.slice(0, 64))}`;
  }
}

/**
 * Checks a request's payload: size first (before any parse), then JSON, then each field's type. An empty
 * payload is an empty request. `now` and `maxAgeMs` bound `ts` both ways (a clock far ahead is as suspect).
 */
export function parseRequest(payload: Buffer, now: number, maxAgeMs: number): ParsedRequest {
  if (payload.length > MAX_REQUEST_BYTES)
    return fail(RequestCodes.TOO_LARGE, `request of ${payload.length} bytes; at most ${MAX_REQUEST_BYTES}`);
  if (payload.length === 0) return { ok: true, request: {} };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return fail(RequestCodes.INVALID, 'the request is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return fail(RequestCodes.INVALID, 'the request must be a JSON object');
  const v = value as Record<string, unknown>;
  const problems = Object.keys(v)
    .slice(0, 8)
    .map((k) => fieldProblem(k, v[k]))
    .filter((p): p is string => p !== undefined);
  if (Object.keys(v).length > FIELDS.size) problems.push('too many fields');
  if (problems.length > 0) return fail(RequestCodes.INVALID, problems.join('; '), v.transaction);
  const request = v as ControlRequest;
  if (request.ts !== undefined && Math.abs(now - request.ts) > maxAgeMs)
    return fail(
      RequestCodes.STALE,
      `request ts is ${Math.round((now - request.ts) / 1000)} s from this agent's clock; at most ${maxAgeMs / 1000} s is accepted`,
      request.transaction,
    );
  return { ok: true, request };
}

export interface ControlResponse {
  status: 'ok' | 'error';
  data?: unknown;
  error?: { code: string; message: string };
  transaction?: Transaction;
  ts: number;
}

/** Error messages are cut like every other published text (docs/schemas/common: 1,024, printable). */
export function errorResponse(
  code: string,
  message: string,
  ts: number,
  transaction?: Transaction,
  data?: unknown,
): ControlResponse {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point (terminal injection).
  const clean = message.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, 1024);
  return {
    status: 'error',
    error: { code, message: clean },
    ...(data !== undefined ? { data } : {}),
    ...(transaction !== undefined ? { transaction } : {}),
    ts,
  };
}

export function okResponse(data: unknown, ts: number, transaction?: Transaction): ControlResponse {
  return {
    status: 'ok',
    ...(data !== undefined ? { data } : {}),
    ...(transaction !== undefined ? { transaction } : {}),
    ts,
  };
}
