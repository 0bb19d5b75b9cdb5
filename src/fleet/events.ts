/**
 * Events in the fleet store: de-duplication, detection counters, reconnect durations, last event.
 *
 * De-duplication (docs/topics.md "Event identity"): an event is a duplicate only when the same
 * `(session, seq)` was accepted among the agent's last WINDOW events. No high-water mark: with one, a
 * single schema-valid event with seq 2^53-1 made every later real event of that agent a "duplicate", and
 * an agent whose state dir was wiped (session and seq back to 1) was rejected for good (issue 10). QoS 1
 * redelivery repeats an event within the agent's in-flight window (16), far inside WINDOW. The highest seq
 * is kept for one purpose: a seq far ahead of it is recognised and counted as a jump, never trusted.
 *
 * The window and the per-target reconnect durations are the mutable parts of an AgentState (copied per
 * event they would cost more than the event): they belong to the agent's entry in the store.
 */
import type { SourceCounters } from '../mqtt/payloads.js';
import type { SourceName } from '../usb/types.js';
import type { AgentState, EventWindow } from './types.js';

/** Events remembered per agent for de-duplication. */
export const WINDOW = 256;
/** A seq this far above the highest seen is a jump (no agent drops more at its queue bound in one go). */
export const SEQ_JUMP = 10_000_000;
export const MAX_DURATIONS = 1000;
/** Targets whose reconnect durations are kept per agent (the event's `target` is a stranger's string). */
export const MAX_DURATION_TARGETS = 64;

export function newWindow(): EventWindow {
  return { seqs: new Float64Array(WINDOW), sessions: new Float64Array(WINDOW), next: 0, size: 0, hi: 0 };
}

function seen(w: EventWindow, session: number, seq: number): boolean {
  for (let i = 0; i < w.size; i++) if (w.seqs[i] === seq && w.sessions[i] === session) return true;
  return false;
}

function remember(w: EventWindow, session: number, seq: number): void {
  w.seqs[w.next] = seq;
  w.sessions[w.next] = session;
  w.next = (w.next + 1) % WINDOW;
  w.size = Math.min(WINDOW, w.size + 1);
}

export type EventLike = { type: string; seq: number; session: number; ts: number } & Record<string, unknown>;

/** The agent after one event, or 'duplicate'. `jump` tells the caller to count a seq far ahead. */
export function applyEvent(a: AgentState, e: EventLike): { agent: AgentState; jump: boolean } | 'duplicate' {
  const w = a.events ?? newWindow();
  if (seen(w, e.session, e.seq)) return 'duplicate';
  remember(w, e.session, e.seq);
  // A jump is shown, not believed: the highest seq stays where the agent's real stream is. A seq far
  // below it means the highest was the jump (it came first): the stream is here, and that is counted.
  const ahead = w.hi > 0 && e.seq > w.hi + SEQ_JUMP;
  const below = e.seq + SEQ_JUMP < w.hi;
  const jump = ahead || below;
  if (below || (!ahead && e.seq > w.hi)) w.hi = e.seq;
  // Events do not move the boot: a hostile session in one event must not make the real ones stale.
  let next: AgentState = { ...a, events: w, seqJumps: a.seqJumps + (jump ? 1 : 0) };
  const target = typeof e.target === 'string' ? e.target : undefined;
  next.lastEvent = {
    type: e.type,
    seq: e.seq,
    ts: e.ts,
    ...(target ? { target } : {}),
    summary: summarize(e),
  };
  if (e.type === 'reconnect.succeeded' && target) {
    const known = target in a.reconnectDurations;
    if (known) {
      // Appended in place, like the event window: copying up to MAX_DURATIONS numbers per event made a
      // stream of reconnect.succeeded cost watch ~100 us and 8 KB of garbage each (issue 17, watch.mjs).
      const list = a.reconnectDurations[target] as number[];
      list.push(e.durationMs as number);
      if (list.length > MAX_DURATIONS) list.shift();
    } else if (Object.keys(a.reconnectDurations).length < MAX_DURATION_TARGETS) {
      next = {
        ...next,
        reconnectDurations: Object.assign(Object.create(null), a.reconnectDurations, {
          [target]: [e.durationMs as number],
        }),
      };
    }
  }
  if (e.type === 'device.detection') next = { ...next, detection: foldDetection(a.detection, e) };
  return { agent: next, jump };
}

/** device.detection -> running per-source counters shaped like health.sources. */
function foldDetection(prev: AgentState['detection'], e: EventLike): AgentState['detection'] {
  const out: AgentState['detection'] = Object.assign(Object.create(null), prev);
  const latency = e.latencyMs as Partial<Record<SourceName, number>>;
  const bump = (name: SourceName, f: (c: SourceCounters) => SourceCounters) => {
    out[name] = f(out[name] ?? { seen: 0, first: 0, missed: 0, meanLatencyMs: null, maxLatencyMs: null });
  };
  for (const [name, ms] of Object.entries(latency) as [SourceName, number][]) {
    bump(name, (c) => ({
      seen: c.seen + 1,
      first: c.first + (name === e.first ? 1 : 0),
      missed: c.missed,
      meanLatencyMs: ((c.meanLatencyMs ?? 0) * c.seen + ms) / (c.seen + 1),
      maxLatencyMs: Math.max(c.maxLatencyMs ?? 0, ms),
    }));
  }
  for (const name of e.missedBy as SourceName[]) bump(name, (c) => ({ ...c, missed: c.missed + 1 }));
  return out;
}

function summarize(e: EventLike): string {
  const target = typeof e.target === 'string' ? ` ${e.target}` : '';
  switch (e.type) {
    case 'session.state':
      return `${String(e.target)} ${String(e.previous)}→${String(e.state)}`;
    case 'reconnect.succeeded':
      return `reconnected${target} in ${String(e.durationMs)}ms`;
    case 'reconnect.failed':
      return `reconnect failed${target}: ${String((e.error as { code?: unknown }).code)}`;
    case 'reconnect.attempt':
      return `reconnecting${target} #${String(e.attempt)}`;
    case 'heal.step':
      return `heal${target}: ${String(e.step)} ${String(e.outcome)}${e.next ? `, next ${String(e.next)}` : ''}`;
    case 'action.run':
      return `action${target}: ${String(e.kind)} ${String(e.outcome)}`;
    case 'device.added':
    case 'device.removed': {
      const d = e.device as { vid?: string; pid?: string; bus: number; address: number };
      const id = d.vid && d.pid ? `${d.vid}:${d.pid}` : `${d.bus}-${d.address}`;
      return `${e.type === 'device.added' ? 'added' : 'removed'} ${id} (${String(e.source)})`;
    }
    case 'device.identified': {
      const d = e.device as { vid?: string; pid?: string; serial?: string };
      return `identified ${String(d.vid)}:${String(d.pid)} serial ${String(d.serial)} (${String(e.source)})`;
    }
    case 'device.detection':
      return `${String(e.kind)} ${String(e.vid)}:${String(e.pid)} first by ${String(e.first)}`;
    case 'source.status':
      return `${String(e.source)} ${String((e.status as { state?: unknown }).state)}`;
    default:
      return e.type;
  }
}
