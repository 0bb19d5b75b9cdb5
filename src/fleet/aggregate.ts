/**
 * The fleet store: `reduce(state, message) -> state`, no I/O, no clock (the subscriber stamps receivedAt).
 * Agents are keyed by broker + agent id: two brokers can carry unrelated agents that share an id (every
 * Raspberry Pi OS image boots as `raspberrypi`), so merging by id would let one hide the other. A bridged
 * agent therefore shows once per broker, which is also what the user asked to watch.
 *
 * For speed with 1,000 agents the returned FleetState reuses the agents Map (updated in place) instead of
 * copying it per message; each AgentState in it is a fresh immutable value. Callers treat the state as
 * owned by the reducer and read it between calls.
 */
import type { SourceCounters } from '../mqtt/payloads.js';
import type { SourceName } from '../usb/types.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, decodeMessage, sanitizeTopic } from './decode.js';
import type { Accepted, AgentState, FleetMessage, FleetState, RejectReason } from './types.js';
import { WARNING_REASONS } from './types.js';

export const MAX_WARNINGS = 50;
const MAX_DURATIONS = 1000;

export function emptyFleet(): FleetState {
  return {
    agents: new Map(),
    counters: {
      received: 0,
      accepted: 0,
      cleared: 0,
      rejected: {
        oversized: 0,
        'not-json': 0,
        schema: 0,
        'bad-topic': 0,
        'agent-mismatch': 0,
        'target-mismatch': 0,
        duplicate: 0,
        stale: 0,
        'unknown-event': 0,
      },
    },
    warnings: [],
    version: 0,
  };
}

export interface ReduceOptions {
  maxPayloadBytes?: number;
}

export interface ReduceResult {
  state: FleetState;
  /** The checked message, or why it was rejected: what `--json` prints. */
  outcome:
    | { ok: true; value: Accepted }
    | { ok: false; reason: RejectReason; detail: string; agent?: string };
  /** A status that was an offline will from an older boot, counted and ignored. */
  lateWill: boolean;
}

export function reduce(state: FleetState, msg: FleetMessage, options: ReduceOptions = {}): ReduceResult {
  state.counters.received++;
  const decoded = decodeMessage(msg.topic, msg.payload, options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  if (!decoded.ok)
    return { state: reject(state, msg, decoded.reason, decoded.detail), outcome: decoded, lateWill: false };
  const value = decoded.value;
  const id = agentId(msg.broker, value.agent);
  const before = state.agents.get(id) ?? newAgent(msg.broker, value.agent);
  const applied = applyToAgent(before, value, msg.receivedAt);
  if (typeof applied === 'string') {
    const reason = applied;
    return {
      state: reject(state, msg, reason, ''),
      outcome: { ok: false, reason, detail: '', agent: value.agent },
      lateWill: false,
    };
  }
  if (applied === undefined) state.agents.delete(id);
  else state.agents.set(id, applied);
  if (value.kind === 'cleared') state.counters.cleared++;
  else state.counters.accepted++;
  state.version++;
  const lateWill = applied !== undefined && applied.staleWills > before.staleWills;
  return { state, outcome: decoded, lateWill };
}

export function agentId(broker: string, agent: string): string {
  return `${broker} ${agent}`;
}

function reject(state: FleetState, msg: FleetMessage, reason: RejectReason, detail: string): FleetState {
  state.counters.rejected[reason]++;
  if (WARNING_REASONS.includes(reason)) {
    state.warnings.push({
      at: msg.receivedAt,
      broker: msg.broker,
      topic: sanitizeTopic(msg.topic),
      reason,
      // Parser messages quote the payload: never let it carry escape sequences to a terminal.
      detail: sanitizeTopic(detail, 200),
    });
    if (state.warnings.length > MAX_WARNINGS) state.warnings.shift();
  }
  state.version++;
  return state;
}

function newAgent(broker: string, agent: string): AgentState {
  return {
    id: agentId(broker, agent),
    broker,
    agent,
    session: 0,
    staleWills: 0,
    targets: Object.create(null),
    detection: Object.create(null),
    reconnectDurations: Object.create(null),
    lastSeq: 0,
    lastSeen: 0,
  };
}

/**
 * One checked message applied to one agent: the new agent value, undefined when nothing is left of it
 * (all retained topics cleared), or the reason it was ignored.
 */
export function applyToAgent(a: AgentState, v: Accepted, at: number): AgentState | undefined | RejectReason {
  const seen = { ...a, lastSeen: at };
  switch (v.kind) {
    case 'status': {
      const p = v.payload;
      // docs/topics.md: a will (offline) from an older boot than the last online is late; ignore it.
      if (p.session < a.session && p.state === 'offline') return { ...seen, staleWills: a.staleWills + 1 };
      if (p.session < a.session) return 'stale';
      return prune({ ...seen, status: p }, p.session);
    }
    case 'info':
    case 'devices':
    case 'health': {
      if (v.payload.session < a.session) return 'stale';
      return prune({ ...seen, [v.kind]: v.payload }, v.payload.session);
    }
    case 'target': {
      if (v.payload.session < a.session) return 'stale';
      const targets = Object.assign(Object.create(null), a.targets, { [v.targetKey]: v.payload });
      return prune({ ...seen, targets }, v.payload.session);
    }
    case 'event':
      return applyEvent(seen, v.payload as EventLike);
    case 'cleared':
      return clear(seen, v.of, v.targetKey);
  }
}

type EventLike = { type: string; seq: number; session: number; ts: number } & Record<string, unknown>;

function applyEvent(a: AgentState, e: EventLike): AgentState | RejectReason {
  // docs/topics.md: QoS 1 is at-least-once and seq is monotonic across restarts: de-duplicate by seq.
  // A wiped state dir restarts seq at 1 under a newer session, so a higher session resets the check.
  if (e.seq <= a.lastSeq && e.session <= a.session) return 'duplicate';
  let next: AgentState = { ...a, lastSeq: e.seq, session: Math.max(a.session, e.session) };
  const target = typeof e.target === 'string' ? e.target : undefined;
  next.lastEvent = {
    type: e.type,
    seq: e.seq,
    ts: e.ts,
    ...(target ? { target } : {}),
    summary: summarize(e),
  };
  if (e.type === 'reconnect.succeeded' && target) {
    const list = [...(a.reconnectDurations[target] ?? []), e.durationMs as number].slice(-MAX_DURATIONS);
    next = {
      ...next,
      reconnectDurations: Object.assign(Object.create(null), a.reconnectDurations, { [target]: list }),
    };
  }
  if (e.type === 'device.detection') next = { ...next, detection: foldDetection(a.detection, e) };
  return next;
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
    case 'device.added':
    case 'device.removed': {
      const d = e.device as { vid?: string; pid?: string; bus: number; address: number };
      const id = d.vid && d.pid ? `${d.vid}:${d.pid}` : `${d.bus}-${d.address}`;
      return `${e.type === 'device.added' ? 'added' : 'removed'} ${id} (${String(e.source)})`;
    }
    case 'device.detection':
      return `${String(e.kind)} ${String(e.vid)}:${String(e.pid)} first by ${String(e.first)}`;
    case 'source.status':
      return `${String(e.source)} ${String((e.status as { state?: unknown }).state)}`;
    default:
      return e.type;
  }
}

/** A newer boot makes the previous boot's retained targets meaningless (a target may be gone). */
function prune(a: AgentState, session: number): AgentState {
  if (session <= a.session) return a;
  const targets: Record<string, AgentState['targets'][string]> = Object.create(null);
  for (const [k, t] of Object.entries(a.targets)) if (t.session >= session) targets[k] = t;
  const next = { ...a, session, targets };
  // A retained offline from an older boot was a late will that overwrote `online` on the broker (a fresh
  // observer gets it in any order with the newer boot's info): it says nothing about the newer boot.
  if (a.status?.state === 'offline' && a.status.session < session) {
    delete next.status;
    next.staleWills = a.staleWills + 1;
  }
  return next;
}

function clear(a: AgentState, of: string, targetKey: string | undefined): AgentState | undefined {
  let next: AgentState = a;
  if (of === 'target' && targetKey) {
    const targets = Object.assign(Object.create(null), a.targets);
    delete targets[targetKey];
    next = { ...a, targets };
  } else if (of === 'status' || of === 'info' || of === 'devices' || of === 'health') {
    next = { ...a };
    delete next[of];
  }
  const empty =
    !next.status && !next.info && !next.devices && !next.health && Object.keys(next.targets).length === 0;
  return empty && !next.lastEvent ? undefined : next;
}
