/**
 * The fleet store: `reduce(state, message) -> state`, no I/O, no clock (the subscriber stamps receivedAt).
 * Agents are keyed by broker + agent id: two brokers can carry unrelated agents that share an id (every
 * Raspberry Pi OS image boots as `raspberrypi`), so merging by id would let one hide the other. A bridged
 * agent therefore shows once per broker, which is also what the user asked to watch.
 *
 * For speed with 1,000 agents the returned FleetState reuses the agents Map (updated in place) instead of
 * copying it per message; each AgentState in it is a fresh immutable value (its event window aside, see
 * events.ts). Callers treat the state as owned by the reducer and read it between calls.
 *
 * Bounded (issue 12): at most `maxAgents` agents (100,000 fake ids took watch from 87 to 264 MB); past it
 * the least recently seen agent that is not online makes room, else the new id is dropped and counted
 * (`agent-limit`). At most MAX_TARGETS target states per agent (`target-limit`).
 *
 * Boots (issue 10): an `online` status is the agent's word on which boot is current. One with a lower
 * session than known is a reset of the boot counter (its state dir was wiped): the old boot's state goes,
 * the new one is followed, counted in `resets`. A retained payload of a higher session than that online
 * status is a leftover of the wiped incarnation and is `stale`; a live one is a newer boot.
 */
import { DEFAULT_MAX_PAYLOAD_BYTES, decodeMessage, sanitizeTopic } from './decode.js';
import { applyEvent, type EventLike } from './events.js';
import type { Accepted, AgentState, FleetMessage, FleetState, RejectReason } from './types.js';
import { WARNING_REASONS } from './types.js';

export const MAX_WARNINGS = 50;
export const DEFAULT_MAX_AGENTS = 10_000;
export const MAX_TARGETS = 256;

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
        'agent-limit': 0,
        'target-limit': 0,
        duplicate: 0,
        stale: 0,
        'unknown-event': 0,
      },
      resets: 0,
      seqJumps: 0,
      evicted: 0,
    },
    warnings: [],
    version: 0,
  };
}

export interface ReduceOptions {
  maxPayloadBytes?: number;
  /** Agents kept at most; DEFAULT_MAX_AGENTS by default. */
  maxAgents?: number;
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
  let before = state.agents.get(id);
  if (!before) {
    if (value.kind === 'cleared') before = newAgent(msg.broker, value.agent);
    else if (makeRoom(state, options.maxAgents ?? DEFAULT_MAX_AGENTS))
      before = newAgent(msg.broker, value.agent);
    else
      return refuse(
        state,
        msg,
        'agent-limit',
        `agent limit ${options.maxAgents ?? DEFAULT_MAX_AGENTS}`,
        value.agent,
      );
  }
  const applied = applyToAgent(before, value, msg.receivedAt, msg.retained);
  if (typeof applied === 'string') return refuse(state, msg, applied, '', value.agent);
  // Re-inserted on every change, so the Map is ordered least recently seen first (for makeRoom).
  state.agents.delete(id);
  if (applied !== undefined) state.agents.set(id, applied);
  if (value.kind === 'cleared') state.counters.cleared++;
  else state.counters.accepted++;
  if (applied) {
    if (applied.resets > before.resets) state.counters.resets++;
    if (applied.seqJumps > before.seqJumps) state.counters.seqJumps++;
  }
  state.version++;
  const lateWill = applied !== undefined && applied.staleWills > before.staleWills;
  return { state, outcome: decoded, lateWill };
}

export function agentId(broker: string, agent: string): string {
  return `${broker} ${agent}`;
}

function refuse(
  state: FleetState,
  msg: FleetMessage,
  reason: RejectReason,
  detail: string,
  agent: string,
): ReduceResult {
  return {
    state: reject(state, msg, reason, detail),
    outcome: { ok: false, reason, detail, agent },
    lateWill: false,
  };
}

/** How many of the least recently seen agents makeRoom looks at: O(1) per new id under a flood. */
const EVICTION_SCAN = 64;

/**
 * True when one more agent fits: at the limit, the least recently seen agent that is not online (among
 * the EVICTION_SCAN least recently seen) makes room; when they are all online, nothing does.
 */
function makeRoom(state: FleetState, max: number): boolean {
  if (state.agents.size < max) return true;
  let victim: AgentState | undefined;
  let looked = 0;
  for (const a of state.agents.values()) {
    if (looked++ >= EVICTION_SCAN) break;
    if (a.status?.state === 'online') continue;
    victim = a;
    break;
  }
  if (!victim) return false;
  state.agents.delete(victim.id);
  state.counters.evicted++;
  return true;
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
    resets: 0,
    seqJumps: 0,
    lastSeen: 0,
  };
}

/** The session the agent's own `online` status names, when that is the latest word on its boot. */
function onlineBoot(a: AgentState): number | undefined {
  return a.status?.state === 'online' && a.status.session === a.session ? a.session : undefined;
}

/** Whether a non-status payload of `session` belongs to the agent's current boot (or a newer one). */
function bootCheck(a: AgentState, session: number, retained: boolean): 'ok' | 'stale' {
  if (session < a.session) return 'stale';
  // A retained payload above what the agent's online status says is left over from before a wipe.
  if (session > a.session && retained && onlineBoot(a) !== undefined) return 'stale';
  return 'ok';
}

/**
 * One checked message applied to one agent: the new agent value, undefined when nothing is left of it
 * (all retained topics cleared), or the reason it was ignored.
 */
export function applyToAgent(
  a: AgentState,
  v: Accepted,
  at: number,
  retained = true,
): AgentState | undefined | RejectReason {
  const seen = { ...a, lastSeen: at };
  switch (v.kind) {
    case 'status': {
      const p = v.payload;
      if (p.state === 'online' && p.session < a.session) return reset(seen, p);
      // docs/topics.md: a will (offline) from an older boot than the last online is late; ignore it.
      if (p.session < a.session && p.state === 'offline') return { ...seen, staleWills: a.staleWills + 1 };
      return prune({ ...seen, status: p }, p.session);
    }
    case 'info':
    case 'devices':
    case 'health': {
      if (bootCheck(a, v.payload.session, retained) === 'stale') return 'stale';
      return prune({ ...seen, [v.kind]: v.payload }, v.payload.session);
    }
    case 'target': {
      if (bootCheck(a, v.payload.session, retained) === 'stale') return 'stale';
      if (!(v.targetKey in a.targets) && Object.keys(a.targets).length >= MAX_TARGETS) return 'target-limit';
      const targets = Object.assign(Object.create(null), a.targets, { [v.targetKey]: v.payload });
      return prune({ ...seen, targets }, v.payload.session);
    }
    case 'event': {
      // Events keep the session they were made in (a queued event sent after a restart carries its own):
      // de-duplicated by (session, seq), never refused for being older (src/fleet/events.ts).
      const applied = applyEvent(seen, v.payload as EventLike);
      return applied === 'duplicate' ? 'duplicate' : applied.agent;
    }
    case 'cleared':
      return clear(seen, v.of, v.targetKey);
  }
}

/** The boot counter went back: the agent's state dir was wiped. Forget the old boot, follow the new one. */
function reset(a: AgentState, status: NonNullable<AgentState['status']>): AgentState {
  const next: AgentState = {
    ...a,
    status,
    session: status.session,
    targets: Object.create(null),
    resets: a.resets + 1,
  };
  delete next.events;
  delete next.info;
  delete next.devices;
  delete next.health;
  return next;
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
