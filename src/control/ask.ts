/**
 * The requester side of the contract (`replug request`): who is asked, the request sent once, and the
 * answers collected until every agent asked has answered or the time is up. For `--all` the agents asked are
 * the retained status census: every agent whose last retained `status` says online.
 */
import { randomBytes } from 'node:crypto';
import type { Requester, RequesterMessage } from '../mqtt/requester.js';
import { parseTopic } from '../mqtt/topics.js';
import type { Clock } from '../util/clock.js';
import { type ControlRequest, type ControlResponse, controlTopics } from './contract.js';

/** Retained statuses come right after the SUBACK; the census is complete once they stop for this long. */
export const CENSUS_QUIET_MS = 300;
/** How long the census waits for the first retained status before it concludes there is none. */
export const CENSUS_FIRST_MS = 1500;
/** ...and never takes longer than this, however many agents keep arriving. */
export const CENSUS_MAX_MS = 3000;

export interface AskOptions {
  /** An agent id, or 'all' for every online agent of the census (sent once on the fleet topic). */
  to: string | { all: true };
  action: string;
  fields: Omit<ControlRequest, 'transaction' | 'ts'>;
  timeoutMs: number;
  clock: Clock;
}

export interface Answer {
  agent: string;
  response: ControlResponse;
  /** ms from the request's PUBACK to this answer. */
  ms: number;
}

export interface AskResult {
  transaction: string;
  asked: string[];
  answers: Answer[];
  /** Agents asked that did not answer in time. */
  missing: string[];
  /** Agents whose status is offline in the census: not asked. */
  offline: string[];
}

function wait(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * Online and offline agents, by their last retained status. Retained messages follow the SUBACK, but a
 * loaded broker may take a while to send the first: the census waits for one (up to CENSUS_FIRST_MS),
 * then until they stop arriving for CENSUS_QUIET_MS, never longer than CENSUS_MAX_MS in all.
 */
async function census(clock: Clock, statuses: Map<string, string>, seen: () => number) {
  const start = clock.monotonic();
  const elapsed = () => clock.monotonic() - start;
  let count = -1;
  while ((count !== seen() || (seen() === 0 && elapsed() < CENSUS_FIRST_MS)) && elapsed() < CENSUS_MAX_MS) {
    count = seen();
    await wait(clock, CENSUS_QUIET_MS);
  }
  const online = [...statuses].filter(([, s]) => s === 'online').map(([a]) => a);
  const offline = [...statuses].filter(([, s]) => s !== 'online').map(([a]) => a);
  return { online: online.sort(), offline: offline.sort() };
}

function statusOf(m: RequesterMessage): string | undefined {
  try {
    const v = JSON.parse(m.payload.toString('utf8')) as { state?: unknown };
    return typeof v.state === 'string' ? v.state : undefined;
  } catch {
    return undefined;
  }
}

function responseOf(m: RequesterMessage, transaction: string): ControlResponse | undefined {
  if (m.retained) return undefined;
  try {
    const v = JSON.parse(m.payload.toString('utf8')) as ControlResponse;
    return v && typeof v === 'object' && v.transaction === transaction ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Subscribes, takes the census (for all), sends the request once and collects the answers. */
export async function ask(link: Requester, o: AskOptions): Promise<AskResult> {
  const all = typeof o.to !== 'string';
  const transaction = randomBytes(8).toString('hex');
  const statuses = new Map<string, string>();
  const answers = new Map<string, Answer>();
  let statusCount = 0;
  let sentAt = 0;
  let onAnswer: () => void = () => undefined;
  link.onMessage((m) => {
    const parsed = parseTopic(m.topic);
    if (parsed?.kind === 'status' && m.retained) {
      const s = statusOf(m);
      if (s) statuses.set(parsed.agent, s);
      statusCount++;
      return;
    }
    const parts = m.topic.split('/');
    const agent = parts[1] as string;
    const response = parts[2] === 'response' ? responseOf(m, transaction) : undefined;
    if (!response || answers.has(agent)) return;
    answers.set(agent, { agent, response, ms: Math.round(o.clock.monotonic() - sentAt) });
    onAnswer();
  });
  const target = typeof o.to === 'string' ? o.to : '+';
  const filters = [controlTopics.response(target, o.action), ...(all ? ['replug/+/status'] : [])];
  const refused = await link.subscribe(filters);
  if (refused.length > 0) throw new Error(`the broker refused the subscription to ${refused.join(', ')}`);
  const { online, offline } = all
    ? await census(o.clock, statuses, () => statusCount)
    : { online: [o.to as string], offline: [] };
  const topic = all ? controlTopics.fleetRequest(o.action) : controlTopics.request(o.to as string, o.action);
  const payload = JSON.stringify({ transaction, ts: o.clock.now(), ...o.fields });
  sentAt = o.clock.monotonic();
  if (online.length > 0 || !all) await link.publish(topic, payload, Buffer.from(transaction));
  await new Promise<void>((resolve) => {
    const timer = o.clock.setTimeout(resolve, o.timeoutMs);
    onAnswer = () => {
      if (online.every((a) => answers.has(a))) {
        o.clock.clearTimeout(timer);
        resolve();
      }
    };
    onAnswer();
  });
  const asked = [...new Set([...online, ...answers.keys()])].sort();
  return {
    transaction,
    asked,
    answers: asked.flatMap((a) => answers.get(a) ?? []),
    missing: online.filter((a) => !answers.has(a)),
    offline: offline.filter((a) => !answers.has(a)),
  };
}
