/**
 * The fleet view as text: `renderFrame(state, {width, color, now}) -> string`, pure, so the live screen,
 * `--once` and the tests share it. Grouped by broker, then runtime; inside a group the agents that need
 * attention (offline, a target not up, a failed reconnect) come first, so on a long list the problem is on
 * screen. One row per target (an agent without targets gets one row).
 */
import type { TargetStatePayload } from '../mqtt/payloads.js';
import { type Cell, type Column, fitLine, layoutTable, paint, printable, type Style } from './table.js';
import type { AgentState, FleetState } from './types.js';
import { WARNING_REASONS } from './types.js';

export interface RenderOptions {
  width: number;
  color: boolean;
  /** Wall clock (ms) for ages like "3s ago". */
  now: number;
  /** Brokers to list even without agents, with their link state (e.g. "unreachable: ECONNREFUSED"). */
  brokers?: readonly { url: string; state: string; ok: boolean }[];
  /** Messages the intake dropped unread under a flood (src/fleet/intake.ts). */
  dropped?: number;
  /** --max-agents, named when agents were dropped or evicted for it. */
  maxAgents?: number;
}

const COLUMNS: readonly Column[] = [
  { header: 'AGENT', priority: 1, min: 6, max: 24 },
  { header: 'STATUS', priority: 1 },
  { header: 'TARGET', priority: 2, min: 9, max: 28 },
  { header: 'SESSION', priority: 2 },
  { header: 'RECONN', priority: 3, align: 'right' },
  { header: 'OK%', priority: 3, align: 'right' },
  { header: 'P50/P95', priority: 4, align: 'right' },
  { header: 'RUNTIME FACTS', priority: 8 },
  { header: 'USB', priority: 5, align: 'right' },
  { header: 'SOURCES', priority: 5, max: 24 },
  { header: 'LAST EVENT', priority: 7, min: 16, max: 48 },
];

/**
 * What the view can say about an agent now. Its status is only as good as the link it came over: with
 * the broker link down, an agent last seen online is `unknown`, not online and not offline (issue 12).
 */
type Liveness = 'online' | 'offline' | 'unknown';

function livenessOf(a: AgentState, linkOk: boolean): Liveness {
  if (!linkOk || !a.status) return 'unknown';
  return a.status.state;
}

export function renderFrame(state: FleetState, o: RenderOptions): string {
  const agents = [...state.agents.values()];
  const linkOk = (url: string) => o.brokers?.find((b) => b.url === url)?.ok ?? true;
  const live = new Map(agents.map((a) => [a.id, livenessOf(a, linkOk(a.broker))]));
  const count = (l: Liveness) => agents.filter((a) => live.get(a.id) === l).length;
  const lines = [
    paint(
      `replug watch · ${agents.length} agents · ${count('online')} online · ${count('offline')} offline · ${count('unknown')} unknown`,
      'bold',
      o.color,
    ),
  ];
  const brokers = new Map<string, AgentState[]>();
  for (const b of o.brokers ?? []) brokers.set(b.url, []);
  for (const a of agents) brokers.set(a.broker, [...(brokers.get(a.broker) ?? []), a]);
  for (const [url, list] of [...brokers].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const link = o.brokers?.find((b) => b.url === url);
    const heading = printable(`${url}${link ? `  (${link.state})` : ''}`);
    lines.push(paint(heading, link && !link.ok ? 'red' : 'cyan', o.color));
    const byRuntime = new Map<string, AgentState[]>();
    for (const a of list) byRuntime.set(runtimeLabel(a), [...(byRuntime.get(runtimeLabel(a)) ?? []), a]);
    for (const [rt, group] of [...byRuntime].sort(([x], [y]) => (x < y ? -1 : 1))) {
      // Facts shared by the whole group go in its heading, so a narrow terminal still shows them.
      const facts = new Set(group.map(factsOf));
      const shared = facts.size === 1 && !facts.has('') ? ` · ${[...facts][0]}` : '';
      lines.push(` ${paint(printable(rt), 'bold', o.color)}${printable(shared)}`);
      const rows = group.sort(byAttention).flatMap((a) => agentRows(a, o.now, live.get(a.id) ?? 'unknown'));
      lines.push(...layoutTable(COLUMNS, rows, o.width, o.color, 2));
    }
  }
  if (agents.length === 0) lines.push('no agents yet (waiting for retained replug/+/status)');
  lines.push(warningLine(state, o.color));
  const limits = limitLine(state, o);
  if (limits) lines.push(limits);
  return lines.map((l) => fitLine(l, o.width)).join('\n');
}

/** e.g. `docker (container-hostnet)` or `native`. */
function runtimeLabel(a: AgentState): string {
  const rt = a.info?.runtime;
  if (!rt) return 'runtime unknown';
  return rt.label && rt.label !== rt.kind ? `${rt.kind} (${rt.label})` : rt.kind;
}

/** netns/udev/devfs: the three facts that decide whether replugs can be seen (DESIGN.md, Detection). */
function factsOf(a: AgentState): string {
  const rt = a.info?.runtime;
  return rt ? `netns ${rt.netns}/${rt.udev ? 'udev' : 'no-udev'}/${rt.devfs}` : '';
}

export function needsAttention(a: AgentState): number {
  if (a.status?.state !== 'online') return 0; // offline, unknown or no status: first
  const targets = Object.values(a.targets);
  if (targets.some((t) => t.state !== 'up')) return 1;
  if (targets.some((t) => t.lastOutcome === 'failed')) return 2;
  return 3;
}

function byAttention(a: AgentState, b: AgentState): number {
  return needsAttention(a) - needsAttention(b) || (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0);
}

function agentRows(a: AgentState, now: number, liveness: Liveness): Cell[][] {
  const status = a.status;
  const notes = `${a.staleWills ? ` (${a.staleWills} late will)` : ''}${a.resets ? ` (boot counter reset ×${a.resets})` : ''}`;
  const statusCell: Cell =
    liveness === 'unknown'
      ? {
          text: `unknown${a.lastSeen ? ` · seen ${age(now - a.lastSeen)}` : ''}${status ? ` · was ${status.state} s${status.session}` : ''}`,
          style: 'yellow',
        }
      : {
          text: `${liveness} s${status?.session ?? a.session}${notes}`,
          style: liveness === 'online' ? 'green' : 'red',
        };
  const facts = factsOf(a);
  const sources = (a.info?.sources ?? [])
    .map((s) => (s.state === 'active' ? s.name : `-${s.name}`))
    .join(' ');
  // Age first: when the column is squeezed, how recent matters more than the tail of the summary.
  const last = a.lastEvent ? `${age(now - a.lastEvent.ts)}: ${a.lastEvent.summary}` : '';
  const head: Cell[] = [
    { text: `${liveness === 'online' ? '●' : '○'} ${a.agent}`, style: statusCell.style },
    statusCell,
  ];
  const tail: Cell[] = [
    { text: facts },
    { text: a.devices ? String(a.devices.count) : '' },
    { text: sources },
    { text: last, style: 'dim' },
  ];
  const targets = Object.values(a.targets).sort((x, y) => (x.target < y.target ? -1 : 1));
  if (targets.length === 0)
    return [[...head, { text: '' }, { text: '' }, { text: '' }, { text: '' }, { text: '' }, ...tail]];
  return targets.map((t, i) => [
    ...(i === 0 ? head : [{ text: '' }, { text: '' }]),
    ...targetCells(t, liveness === 'online'),
    ...(i === 0 ? tail : []),
  ]);
}

/**
 * A target's session as its agent last reported it. Only an agent that is online now vouches for it: for
 * an offline or unknown agent it is history, shown as `last: up`, never as a green "up" (issue 12).
 */
function targetCells(t: TargetStatePayload, current: boolean): Cell[] {
  const r = t.reconnects;
  const live: Style = t.state === 'up' ? 'green' : t.state === 'backoff' ? 'red' : 'yellow';
  const style: Style = current ? live : 'dim';
  const rate = r.count > 0 ? `${Math.round((100 * r.ok) / r.count)}%` : '';
  const lat = r.p50Ms === null ? '' : `${fmtMs(r.p50Ms)}/${fmtMs(r.p95Ms)}`;
  return [
    { text: t.target },
    {
      text: `${current ? '' : 'last: '}${t.state}${t.lastError ? ` ${t.lastError.code.replace(/^REPLUG_/, '')}` : ''}${healText(t)}`,
      style,
    },
    { text: String(r.count) },
    { text: rate, style: r.failed > 0 ? 'red' : undefined },
    { text: lat },
  ];
}

/** ` healed 1/2` (climbs that brought the session back / climbs) when the agent runs --heal (issue 15). */
export function healText(t: Pick<TargetStatePayload, 'heal'>): string {
  if (!t.heal || t.heal.climbs === 0) return '';
  return ` healed ${t.heal.healed}/${t.heal.climbs}`;
}

function fmtMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 10_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms)}ms`;
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** What was dropped to stay bounded (issue 12), said so rather than silently missing. */
function limitLine(state: FleetState, o: RenderOptions): string | undefined {
  const c = state.counters;
  const parts: string[] = [];
  if (c.rejected['agent-limit'] > 0 || c.evicted > 0)
    parts.push(
      `agent limit ${o.maxAgents ?? '?'} (--max-agents): ${c.rejected['agent-limit']} messages of new agents dropped, ${c.evicted} agents not online forgotten`,
    );
  if (c.rejected['target-limit'] > 0)
    parts.push(`${c.rejected['target-limit']} target states over 256 per agent dropped`);
  if ((o.dropped ?? 0) > 0) parts.push(`${o.dropped} messages dropped unread under a flood`);
  if (c.resets > 0) parts.push(`${c.resets} boot counter resets followed`);
  if (c.seqJumps > 0) parts.push(`${c.seqJumps} events with a seq far ahead (not trusted)`);
  return parts.length > 0 ? paint(`dropped/noted: ${parts.join(' · ')}`, 'yellow', o.color) : undefined;
}

function warningLine(state: FleetState, color: boolean): string {
  const counts = WARNING_REASONS.map((r) => [r, state.counters.rejected[r]] as const).filter(
    ([, n]) => n > 0,
  );
  if (counts.length === 0) return paint(`warnings: none · ${state.counters.received} messages`, 'dim', color);
  const total = counts.reduce((s, [, n]) => s + n, 0);
  const last = state.warnings.at(-1);
  const text = `warnings: ${total} (${counts.map(([r, n]) => `${r} ${n}`).join(', ')})${
    last ? ` · last: ${last.reason} on ${last.topic}` : ''
  }`;
  return paint(text, 'yellow', color);
}
