/**
 * `replug watch --compare`: the same target under each runtime, side by side, answering "does my container
 * behave like native?". Pure over the store.
 *
 * Figures:
 * - count/ok/failed are summed from the agents' retained target states (the agents' own counters, exact).
 * - p50/p95 are nearest-rank over the pooled durations of reconnect.succeeded events seen while watching
 *   (exact). When none were seen (e.g. `--once`, events are not retained) they fall back to the largest
 *   per-agent figure, flagged `approx`: a pooled median cannot exceed the largest group median (at least
 *   half of every group lies at or below it), and likewise for p95, so the fallback is an upper bound.
 * - sources: per runtime, how many agents had each detection source active or unavailable, and its
 *   sightings/misses/latency, from health.sources (the agent's counters) or device.detection events.
 */
import type { SourceCounters } from '../mqtt/payloads.js';
import { percentile } from '../mqtt/payloads.js';
import type { SourceName } from '../usb/types.js';
import type { AgentState, FleetState } from './types.js';

export interface RuntimeTargetFigures {
  agents: number;
  count: number;
  ok: number;
  failed: number;
  /** ok / count, null without reconnects. */
  successRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  approx: boolean;
  /** Session states of the target on these agents, e.g. { up: 2, backoff: 1 }. */
  states: Record<string, number>;
}

export interface RuntimeSourceFigures {
  active: number;
  unavailable: number;
  seen: number;
  missed: number;
  meanLatencyMs: number | null;
  maxLatencyMs: number | null;
}

export interface Comparison {
  /** Runtime names in display order: native first, then alphabetical. */
  runtimes: string[];
  targets: { target: string; byRuntime: Record<string, RuntimeTargetFigures> }[];
  sources: Record<string, Partial<Record<SourceName, RuntimeSourceFigures>>>;
}

/** The label the user gave the runtime, else its kind; `unknown` until the agent's info arrived. */
export function runtimeName(a: AgentState): string {
  return a.info?.runtime.label ?? a.info?.runtime.kind ?? 'unknown';
}

export function compareRuntimes(
  state: FleetState,
  keep: (a: AgentState) => boolean = () => true,
): Comparison {
  const agents = [...state.agents.values()].filter(keep);
  const runtimes = [...new Set(agents.map(runtimeName))].sort(byRuntime);
  const pooled = new Map<
    string,
    Map<string, { fig: RuntimeTargetFigures; durations: number[]; p50s: number[]; p95s: number[] }>
  >();
  for (const a of agents) {
    const rt = runtimeName(a);
    for (const t of Object.values(a.targets)) {
      const byRt = pooled.get(t.target) ?? new Map();
      pooled.set(t.target, byRt);
      const cell = byRt.get(rt) ?? { fig: emptyFigures(), durations: [], p50s: [], p95s: [] };
      byRt.set(rt, cell);
      cell.fig.agents++;
      cell.fig.count += t.reconnects.count;
      cell.fig.ok += t.reconnects.ok;
      cell.fig.failed += t.reconnects.failed;
      cell.fig.states[t.state] = (cell.fig.states[t.state] ?? 0) + 1;
      cell.durations.push(...(a.reconnectDurations[t.target] ?? []));
      if (t.reconnects.p50Ms !== null) cell.p50s.push(t.reconnects.p50Ms);
      if (t.reconnects.p95Ms !== null) cell.p95s.push(t.reconnects.p95Ms);
    }
  }
  const targets = [...pooled.keys()].sort().map((target) => {
    const byRuntime: Record<string, RuntimeTargetFigures> = {};
    for (const [rt, cell] of pooled.get(target) ?? []) byRuntime[rt] = finish(cell);
    return { target, byRuntime };
  });
  const sources: Comparison['sources'] = {};
  for (const a of agents) {
    const rt = runtimeName(a);
    sources[rt] = sources[rt] ?? {};
    mergeSources(sources[rt], a);
  }
  return { runtimes, targets, sources };
}

function byRuntime(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'native') return -1;
  if (b === 'native') return 1;
  return a < b ? -1 : 1;
}

function emptyFigures(): RuntimeTargetFigures {
  return {
    agents: 0,
    count: 0,
    ok: 0,
    failed: 0,
    successRate: null,
    p50Ms: null,
    p95Ms: null,
    approx: false,
    states: {},
  };
}

function finish(cell: { fig: RuntimeTargetFigures; durations: number[]; p50s: number[]; p95s: number[] }) {
  const fig = { ...cell.fig, successRate: cell.fig.count > 0 ? cell.fig.ok / cell.fig.count : null };
  if (cell.durations.length > 0) {
    const sorted = [...cell.durations].sort((x, y) => x - y);
    return { ...fig, p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95) };
  }
  if (cell.p50s.length === 0) return fig;
  return {
    ...fig,
    p50Ms: Math.max(...cell.p50s),
    p95Ms: cell.p95s.length ? Math.max(...cell.p95s) : null,
    // One agent's own figure is exact; only a maximum over several is a bound.
    approx: cell.p50s.length > 1,
  };
}

function mergeSources(into: Partial<Record<SourceName, RuntimeSourceFigures>>, a: AgentState): void {
  const slot = (name: SourceName): RuntimeSourceFigures => {
    into[name] = into[name] ?? blank();
    return into[name];
  };
  const blank = (): RuntimeSourceFigures => ({
    active: 0,
    unavailable: 0,
    seen: 0,
    missed: 0,
    meanLatencyMs: null,
    maxLatencyMs: null,
  });
  for (const s of a.info?.sources ?? []) {
    const f = slot(s.name);
    if (s.state === 'active') f.active++;
    else if (s.state === 'unavailable') f.unavailable++;
  }
  const counters = a.health && Object.keys(a.health.sources).length > 0 ? a.health.sources : a.detection;
  for (const [name, c] of Object.entries(counters) as [SourceName, SourceCounters][]) {
    const f = slot(name);
    if (c.meanLatencyMs !== null && c.seen > 0) {
      const total = (f.meanLatencyMs ?? 0) * f.seen + c.meanLatencyMs * c.seen;
      f.meanLatencyMs = total / (f.seen + c.seen);
    }
    f.seen += c.seen;
    f.missed += c.missed;
    if (c.maxLatencyMs !== null) f.maxLatencyMs = Math.max(f.maxLatencyMs ?? 0, c.maxLatencyMs);
  }
}
