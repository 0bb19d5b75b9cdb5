/**
 * What the views remember beside the fleet store (issue 19): the last events of each agent, the downtime of
 * each target's last replug, and the samples the web charts and the metrics histograms need. The store
 * (src/fleet/aggregate.ts) keeps what the agents' retained topics say; events are not retained, so
 * everything here is "seen while watching". Fed with the events the store accepted (never a duplicate),
 * bounded everywhere: a view must not grow with the fleet's uptime.
 */
import { printable } from '../table.js';
import type { Accepted, AgentState } from '../types.js';

export const EVENTS_KEPT = 20;
/**
 * Chart samples kept for the whole fleet (reconnect durations and detection latencies, each): at least the
 * newest SAMPLES_KEPT, at most twice that. Trimmed in one go when it doubles: a splice per sample moved
 * 2,000 entries per event and was the largest single cost of a 50,000-event stream (issue 17).
 */
export const SAMPLES_KEPT = 2000;

export interface JournalEvent {
  type: string;
  ts: number;
  target?: string;
  summary: string;
}

/** A replug of one target: device removed (or the session left `up`) until the session was up again. */
export interface TargetDowntime {
  /** When the session went down, while it still is; cleared when it comes up. */
  downSince?: number;
  /** The last finished outage: removed → up, in ms. */
  lastMs?: number;
  lastUpAt?: number;
}

export interface ReconnectSample {
  ts: number;
  agent: string;
  runtime: string;
  target: string;
  ms: number;
}

export interface DetectionSample {
  ts: number;
  agent: string;
  runtime: string;
  source: string;
  /** Behind the first source to see it (0 for the first). */
  ms: number;
}

export interface AgentJournal {
  events: JournalEvent[];
  downtime: Record<string, TargetDowntime>;
  /** Event types counted, for metrics (heal.step among them once agents publish it). */
  counts: Record<string, number>;
  /** ts of the last health payload seen live, and the gap to the one before: the agent's interval. */
  healthTs?: number;
  healthIntervalMs?: number;
}

type Event = { type: string; ts: number; target?: unknown } & Record<string, unknown>;

export class ViewJournal {
  readonly agents = new Map<string, AgentJournal>();
  readonly reconnects: ReconnectSample[] = [];
  readonly detections: DetectionSample[] = [];
  /** +1 per change, like FleetState.version. */
  version = 0;
  private readonly listeners = new Set<(agent: AgentState, e: Event) => void>();

  /** Calls fn after every event noted; returns the remover (the metrics histograms listen here). */
  onEvent(fn: (agent: AgentState, e: Event) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  of(id: string): AgentJournal {
    let j = this.agents.get(id);
    if (!j) {
      j = { events: [], downtime: Object.create(null), counts: Object.create(null) };
      this.agents.set(id, j);
    }
    return j;
  }

  /** Drops agents the store no longer holds (evicted, cleared), so the journal stays as bounded as it. */
  prune(known: (id: string) => boolean): void {
    for (const id of this.agents.keys()) if (!known(id)) this.agents.delete(id);
  }

  /** A health payload arrived: its gap to the previous one is the agent's health interval. */
  noteHealth(id: string, ts: number): void {
    const j = this.of(id);
    if (j.healthTs !== undefined && ts > j.healthTs) j.healthIntervalMs = ts - j.healthTs;
    j.healthTs = ts;
  }

  note(agent: AgentState, e: Event, summary: string): void {
    const j = this.of(agent.id);
    const target = typeof e.target === 'string' ? e.target : undefined;
    j.events.push({ type: e.type, ts: e.ts, ...(target ? { target } : {}), summary: printable(summary) });
    if (j.events.length > EVENTS_KEPT) j.events.shift();
    j.counts[e.type] = (j.counts[e.type] ?? 0) + 1;
    if (target) this.downtime(j, target, e);
    this.samples(agent, e, target);
    this.version++;
    for (const fn of this.listeners) fn(agent, e);
  }

  private downtime(j: AgentJournal, target: string, e: Event): void {
    if (Object.keys(j.downtime).length >= 64 && !(target in j.downtime)) return;
    const d = j.downtime[target] ?? {};
    j.downtime[target] = d;
    if (e.type === 'session.state') {
      if (e.state === 'up') {
        if (d.downSince !== undefined) {
          d.lastMs = Math.max(0, e.ts - d.downSince);
          d.lastUpAt = e.ts;
        }
        delete d.downSince;
      } else if (e.previous === 'up' && d.downSince === undefined) d.downSince = e.ts;
    }
  }

  private samples(agent: AgentState, e: Event, target: string | undefined): void {
    const runtime = agent.info?.runtime.label ?? agent.info?.runtime.kind ?? 'unknown';
    if (e.type === 'reconnect.succeeded' && target && typeof e.durationMs === 'number') {
      push(this.reconnects, { ts: e.ts, agent: agent.agent, runtime, target, ms: e.durationMs });
    }
    if (e.type === 'device.detection' && e.latencyMs && typeof e.latencyMs === 'object') {
      for (const [source, ms] of Object.entries(e.latencyMs as Record<string, unknown>)) {
        if (typeof ms === 'number')
          push(this.detections, { ts: e.ts, agent: agent.agent, runtime, source, ms });
      }
    }
  }
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length >= 2 * SAMPLES_KEPT) list.splice(0, list.length - SAMPLES_KEPT);
}

/**
 * Notes what one reduced message means for the journal: an accepted event (with the summary the store
 * made), a health payload's time. Agents the store dropped are forgotten here too.
 */
export function feedJournal(
  journal: ViewJournal,
  state: { agents: Map<string, AgentState> },
  broker: string,
  outcome: { ok: true; value: Accepted } | { ok: false },
): void {
  if (!outcome.ok) return;
  const v = outcome.value;
  const agent = state.agents.get(`${broker} ${v.agent}`);
  if (!agent) {
    journal.agents.delete(`${broker} ${v.agent}`);
    return;
  }
  if (v.kind === 'event') journal.note(agent, v.payload as Event, agent.lastEvent?.summary ?? v.payload.type);
  else if (v.kind === 'health') journal.noteHealth(agent.id, v.payload.ts);
  if (journal.agents.size > state.agents.size) journal.prune((id) => state.agents.has(id));
}
