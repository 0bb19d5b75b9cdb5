/**
 * The fleet as rows for the terminal and web views (issue 19): one row per agent, filtered and sorted,
 * pure over the store and the journal. The terminal and the web page share this, so `/` there and the
 * filter box here mean the same thing: every whitespace-separated term must occur (case-insensitive) in
 * the row's agent id, broker, runtime, state words or target keys.
 */
import type { TargetStatePayload } from '../../mqtt/payloads.js';
import { percentile } from '../../mqtt/payloads.js';
import { runtimeName } from '../compare.js';
import type { AgentState, FleetState } from '../types.js';
import type { AgentJournal, TargetDowntime, ViewJournal } from './journal.js';

export const SORTS = ['agent', 'state', 'last', 'p95'] as const;
export type SortKey = (typeof SORTS)[number];
export const SORT_LABELS: Record<SortKey, string> = {
  agent: 'agent',
  state: 'state',
  last: 'last event',
  p95: 'reconnect p95',
};

/** The agent's health is stale past this many of its health intervals (--stale-after). */
export const DEFAULT_STALE_FACTOR = 3;
/** The agent's default --health-interval, used until two health payloads showed the real one. */
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;

export type Liveness = 'online' | 'offline' | 'unknown';

export interface TargetRow {
  key: string;
  state: string;
  /** Only an online agent vouches for its targets' state (issue 12). */
  current: boolean;
  since: number;
  reconnects: number;
  ok: number;
  failed: number;
  p50Ms: number | null;
  p95Ms: number | null;
  downtime: TargetDowntime;
  lastError?: string;
}

export interface ViewRow {
  id: string;
  agent: string;
  broker: string;
  liveness: Liveness;
  session: number;
  runtime: string;
  /** netns/udev/devfs, the facts that decide whether replugs are seen. */
  facts: string;
  devices: number | null;
  targets: TargetRow[];
  lastEvent?: { ts: number; summary: string };
  /** Worst reconnect p95 over the agent's targets (ms), for sorting and the column. */
  p95Ms: number | null;
  /** Retained state older than N × the agent's health interval: shown, not believed. */
  stale: boolean;
  /** When the newest retained payload of this agent was made (its ts), for the stale marker. */
  stateTs: number | null;
  haystack: string;
}

export interface ModelOptions {
  now: number;
  filter?: string;
  sort?: SortKey;
  linkOk?: (broker: string) => boolean;
  staleFactor?: number;
}

export function buildRows(state: FleetState, journal: ViewJournal, o: ModelOptions): ViewRow[] {
  const terms = (o.filter ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  const rows: ViewRow[] = [];
  for (const a of state.agents.values()) {
    const row = toRow(a, journal.agents.get(a.id), o);
    if (terms.every((t) => row.haystack.includes(t))) rows.push(row);
  }
  return rows.sort(comparator(o.sort ?? 'agent'));
}

export function toRow(a: AgentState, j: AgentJournal | undefined, o: ModelOptions): ViewRow {
  const linkOk = o.linkOk?.(a.broker) ?? true;
  const liveness: Liveness = !linkOk || !a.status ? 'unknown' : a.status.state;
  const targets = Object.values(a.targets)
    .sort((x, y) => (x.target < y.target ? -1 : 1))
    .map((t) => targetRow(a, t, j, liveness === 'online'));
  const p95s = targets.map((t) => t.p95Ms).filter((v): v is number => v !== null);
  const stateTs = newestTs(a);
  const interval = j?.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS;
  const factor = o.staleFactor ?? DEFAULT_STALE_FACTOR;
  const stale = liveness !== 'offline' && stateTs !== null && o.now - stateTs > factor * interval;
  const runtime = runtimeName(a);
  const rt = a.info?.runtime;
  const facts = rt ? `netns ${rt.netns}/${rt.udev ? 'udev' : 'no-udev'}/${rt.devfs}` : '';
  const words = [a.agent, a.broker, runtime, liveness, stale ? 'stale' : '', facts];
  for (const t of targets) words.push(t.key, t.state);
  return {
    id: a.id,
    agent: a.agent,
    broker: a.broker,
    liveness,
    session: a.status?.session ?? a.session,
    runtime,
    facts,
    devices: a.devices ? a.devices.count : null,
    targets,
    ...(a.lastEvent ? { lastEvent: { ts: a.lastEvent.ts, summary: a.lastEvent.summary } } : {}),
    p95Ms: p95s.length > 0 ? Math.max(...p95s) : null,
    stale,
    stateTs,
    haystack: words.join(' ').toLowerCase(),
  };
}

function targetRow(a: AgentState, t: TargetStatePayload, j: AgentJournal | undefined, current: boolean) {
  const seen = a.reconnectDurations[t.target];
  // Durations seen while watching are exact; the agent's own retained p95 covers its whole uptime.
  const sorted = seen && seen.length > 0 ? [...seen].sort((x, y) => x - y) : undefined;
  const row: TargetRow = {
    key: t.target,
    state: t.state,
    current,
    since: t.since,
    reconnects: t.reconnects.count,
    ok: t.reconnects.ok,
    failed: t.reconnects.failed,
    p50Ms: sorted ? percentile(sorted, 50) : t.reconnects.p50Ms,
    p95Ms: sorted ? percentile(sorted, 95) : t.reconnects.p95Ms,
    downtime: j?.downtime[t.target] ?? {},
  };
  if (t.lastError) row.lastError = t.lastError.code.replace(/^REPLUG_/, '');
  return row;
}

/** The freshest retained payload: health is republished every interval, so it leads when present. */
function newestTs(a: AgentState): number | null {
  const ts = [a.health?.ts, a.info?.ts, a.devices?.ts, a.status?.ts].filter(
    (v): v is number => typeof v === 'number',
  );
  return ts.length > 0 ? Math.max(...ts) : null;
}

const LIVENESS_ORDER: Record<Liveness, number> = { offline: 0, unknown: 1, online: 3 };

/** Lower is worse: offline, unknown, stale, a target not up, a failed reconnect, then the fine ones. */
export function attention(r: ViewRow): number {
  if (r.liveness !== 'online') return LIVENESS_ORDER[r.liveness];
  if (r.stale) return 2;
  if (r.targets.some((t) => t.state !== 'up')) return 2.5;
  if (r.targets.some((t) => t.failed > 0)) return 2.8;
  return 3;
}

function comparator(sort: SortKey): (a: ViewRow, b: ViewRow) => number {
  const byId = (a: ViewRow, b: ViewRow) =>
    a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : a.broker < b.broker ? -1 : a.broker > b.broker ? 1 : 0;
  switch (sort) {
    case 'agent':
      return byId;
    case 'state':
      return (a, b) => attention(a) - attention(b) || byId(a, b);
    case 'last':
      return (a, b) => (b.lastEvent?.ts ?? -1) - (a.lastEvent?.ts ?? -1) || byId(a, b);
    case 'p95':
      return (a, b) => (b.p95Ms ?? -1) - (a.p95Ms ?? -1) || byId(a, b);
  }
}
