/**
 * Prometheus metrics of a fleet (issue 19), one set of names for `replug agent --metrics` (a fleet of one)
 * and `replug watch --metrics` (every agent it sees): both feed a FleetState (src/fleet) and a ViewJournal,
 * and this module turns them into prom-client metrics. Gauges and counters are read from the store at
 * scrape time (the agents' own retained counters: exact, and right after a restart of the watcher);
 * histograms are observed from events as they arrive (events are not retained: "seen while exporting").
 *
 * Bounded (a watcher can see 10,000 agents): at most `maxAgents` agents are exported, the first ones by
 * id; the rest are left out whole and counted in replug_metrics_agents_unexported, so a dashboard can say
 * the picture is partial instead of Prometheus drowning in series.
 *
 * prom-client is passed in, never imported here: it is loaded only when --metrics is given (issue 17:
 * idle memory), by src/metrics/server.ts.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { runtimeName } from '../fleet/compare.js';
import type { AgentState, FleetState } from '../fleet/types.js';
import type { ViewJournal } from '../fleet/view/journal.js';

export type PromClient = typeof import('prom-client');

export const DEFAULT_MAX_METRIC_AGENTS = 1000;
export const SESSION_STATES = ['down', 'starting', 'up', 'waiting', 'backoff', 'terminating'] as const;
export const RECONNECT_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
export const DETECTION_BUCKETS_S = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface FleetSource {
  state: () => FleetState;
  journal: ViewJournal;
  /** Broker links of the watcher (absent for an agent, whose own link is in its health). */
  links?: () => readonly { url: string; ok: boolean }[];
}

type G = Gauge<string>;

interface Meters {
  up: G;
  sessionState: G;
  reconnects: Counter<string>;
  reconnectSeconds: Histogram<string>;
  heal: Counter<string>;
  detectionSeconds: Histogram<string>;
  detectionSeen: Counter<string>;
  detectionMisses: Counter<string>;
  queueDepth: G;
  queueDropped: Counter<string>;
  brokerConnected: G;
  brokerReconnects: Counter<string>;
  unexported: G;
  watchLink: G;
}

/** A registry holding the fleet's metrics; `close()` stops listening to the journal. */
export function fleetRegistry(
  prom: PromClient,
  source: FleetSource,
  maxAgents = DEFAULT_MAX_METRIC_AGENTS,
): { registry: Registry; close: () => void } {
  const registry = new prom.Registry();
  let exported = new Set<string>();
  const m = meters(prom, registry, () => {
    exported = refresh(m, source, maxAgents);
  });
  const off = source.journal.onEvent((agent, e) => {
    if (!exported.has(agent.id) && exported.size >= maxAgents) return;
    observe(m, agent, e);
  });
  return { registry, close: off };
}

// longer than 80 lines because it is the table of every metric's name, help and labels, in one place.
function meters(prom: PromClient, registry: Registry, collect: () => void): Meters {
  const at = { registers: [registry] };
  const AR = ['agent', 'runtime'];
  const ART = ['agent', 'runtime', 'target'];
  return {
    // The one collect hook: every scrape re-reads the store before any metric is serialised.
    up: new prom.Gauge({
      name: 'replug_agent_up',
      help: '1 when the agent says online (its retained status), 0 when offline or unknown',
      labelNames: AR,
      ...at,
      collect,
    }),
    sessionState: new prom.Gauge({
      name: 'replug_target_session_state',
      help: 'Session state of a target: 1 for the state it is in, 0 for the others',
      labelNames: [...ART, 'state'],
      ...at,
    }),
    reconnects: new prom.Counter({
      name: 'replug_target_reconnects_total',
      help: 'Finished attempts to bring the session up, by outcome (the agent’s own counters)',
      labelNames: [...ART, 'outcome'],
      ...at,
    }),
    reconnectSeconds: new prom.Histogram({
      name: 'replug_reconnect_duration_seconds',
      help: 'Device seen → session up, per successful reconnect seen while exporting',
      labelNames: ART,
      buckets: RECONNECT_BUCKETS_S,
      ...at,
    }),
    heal: new prom.Counter({
      name: 'replug_heal_steps_total',
      help: 'Recovery steps taken (heal.step events seen while exporting), by step',
      labelNames: [...ART, 'step'],
      ...at,
    }),
    detectionSeconds: new prom.Histogram({
      name: 'replug_detection_latency_seconds',
      help: 'How long after the first source each source saw a plug or unplug (device.detection events)',
      labelNames: [...AR, 'source'],
      buckets: DETECTION_BUCKETS_S,
      ...at,
    }),
    detectionSeen: new prom.Counter({
      name: 'replug_detection_seen_total',
      help: 'Plugs and unplugs a detection source reported',
      labelNames: [...AR, 'source'],
      ...at,
    }),
    detectionMisses: new prom.Counter({
      name: 'replug_detection_misses_total',
      help: 'Plugs and unplugs an active detection source did not report within the settle window',
      labelNames: [...AR, 'source'],
      ...at,
    }),
    queueDepth: new prom.Gauge({
      name: 'replug_queue_depth',
      help: 'Events waiting in the agent’s durable queue',
      labelNames: AR,
      ...at,
    }),
    queueDropped: new prom.Counter({
      name: 'replug_queue_dropped_total',
      help: 'Events the agent’s queue dropped at its bound',
      labelNames: AR,
      ...at,
    }),
    brokerConnected: new prom.Gauge({
      name: 'replug_broker_connected',
      help: '1 while the agent is connected to its broker',
      labelNames: AR,
      ...at,
    }),
    brokerReconnects: new prom.Counter({
      name: 'replug_broker_reconnects_total',
      help: 'Times the agent reconnected to its broker',
      labelNames: AR,
      ...at,
    }),
    unexported: new prom.Gauge({
      name: 'replug_metrics_agents_unexported',
      help: 'Agents known but left out of these metrics past the series bound',
      ...at,
    }),
    watchLink: new prom.Gauge({
      name: 'replug_watch_broker_up',
      help: '1 while `replug watch` is connected and subscribed to this broker',
      labelNames: ['broker'],
      ...at,
    }),
  };
}

/** Re-reads the store into the gauges and counters; returns the ids exported. */
function refresh(m: Meters, source: FleetSource, maxAgents: number): Set<string> {
  for (const g of [
    m.up,
    m.sessionState,
    m.reconnects,
    m.detectionSeen,
    m.detectionMisses,
    m.queueDepth,
    m.queueDropped,
    m.brokerConnected,
    m.brokerReconnects,
    m.watchLink,
  ])
    g.reset();
  const agents = [...source.state().agents.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  const shown = agents.slice(0, maxAgents);
  m.unexported.set(agents.length - shown.length);
  for (const a of shown) agentMetrics(m, a);
  for (const l of source.links?.() ?? []) m.watchLink.set({ broker: l.url }, l.ok ? 1 : 0);
  return new Set(shown.map((a) => a.id));
}

function agentMetrics(m: Meters, a: AgentState): void {
  const base = { agent: a.agent, runtime: runtimeName(a) };
  m.up.set(base, a.status?.state === 'online' ? 1 : 0);
  for (const t of Object.values(a.targets)) {
    const l = { ...base, target: t.target };
    for (const s of SESSION_STATES) m.sessionState.set({ ...l, state: s }, t.state === s ? 1 : 0);
    m.reconnects.inc({ ...l, outcome: 'ok' }, t.reconnects.ok);
    m.reconnects.inc({ ...l, outcome: 'failed' }, t.reconnects.failed);
  }
  const counters = a.health && Object.keys(a.health.sources).length > 0 ? a.health.sources : a.detection;
  for (const [source, c] of Object.entries(counters)) {
    if (!c) continue;
    m.detectionSeen.inc({ ...base, source }, c.seen);
    m.detectionMisses.inc({ ...base, source }, c.missed);
  }
  const h = a.health;
  if (h) {
    m.queueDepth.set(base, h.queue.depth);
    m.queueDropped.inc(base, h.queue.dropped);
    m.brokerConnected.set(base, h.broker.connected ? 1 : 0);
    m.brokerReconnects.inc(base, h.broker.reconnects);
  }
}

function observe(m: Meters, a: AgentState, e: { type: string } & Record<string, unknown>): void {
  const base = { agent: a.agent, runtime: runtimeName(a) };
  const target = typeof e.target === 'string' ? e.target : '';
  if (e.type === 'reconnect.succeeded' && typeof e.durationMs === 'number')
    m.reconnectSeconds.observe({ ...base, target }, e.durationMs / 1000);
  else if (e.type === 'device.detection' && e.latencyMs && typeof e.latencyMs === 'object') {
    for (const [source, ms] of Object.entries(e.latencyMs as Record<string, unknown>))
      if (typeof ms === 'number') m.detectionSeconds.observe({ ...base, source }, ms / 1000);
  } else if (e.type === 'heal.step') {
    // The heal feature's event (another branch); its step name, bounded, when it carries one.
    const step = typeof e.step === 'string' ? e.step.slice(0, 32) : 'unknown';
    m.heal.inc({ ...base, target, step });
  }
}
