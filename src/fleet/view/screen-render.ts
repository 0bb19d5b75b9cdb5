/**
 * The interactive terminal view as lines (issue 19): `renderScreen(input) -> lines`, exactly `rows` of them,
 * none wider than `cols`. The header (fleet counts, broker links) and the status bar stay put; the rows
 * between scroll. Pure: the driver (terminal.ts), the tests and the tmux fixtures share it.
 */
import { type Cell, type Column, fitLine, layoutTable, paint, printable } from '../table.js';
import type { FleetState } from '../types.js';
import { WARNING_REASONS } from '../types.js';
import { detailLines } from './detail.js';
import { ago, duration, span } from './format.js';
import type { ViewJournal } from './journal.js';
import type { UiState } from './keys.js';
import { buildRows, SORT_LABELS, type TargetRow, type ViewRow } from './model.js';

export interface ScreenInput {
  state: FleetState;
  journal: ViewJournal;
  ui: UiState;
  now: number;
  cols: number;
  rows: number;
  color: boolean;
  brokers: readonly { url: string; state: string; ok: boolean }[];
  dropped?: number;
  staleFactor?: number;
}

export interface Screen {
  lines: string[];
  /** Row ids in display order and the body height: what handleKey needs. */
  ids: string[];
  page: number;
  detailLines: number;
  /** Each row's first target key, parallel to `ids`: the reset key's target. */
  targets: (string | undefined)[];
}

/** Header (2 lines) + column headings + status bar. */
const CHROME = 4;

const COLUMNS: readonly Column[] = [
  { header: '  AGENT', priority: 1, min: 8, max: 26 },
  { header: 'STATUS', priority: 1 },
  { header: 'TARGET', priority: 2, min: 9, max: 26 },
  { header: 'SESSION', priority: 2, max: 20 },
  { header: 'LAST DOWN', priority: 2, align: 'right' },
  { header: 'RUNTIME', priority: 4, max: 20 },
  { header: 'RECONN', priority: 5, align: 'right' },
  { header: 'P95', priority: 5, align: 'right' },
  { header: 'USB', priority: 7, align: 'right' },
  { header: 'LAST EVENT', priority: 6, min: 14, max: 60 },
];

export function renderScreen(input: ScreenInput): Screen {
  const { ui, cols } = input;
  const rows = Math.max(CHROME + 1, input.rows);
  const page = rows - CHROME;
  const linkOk = (url: string) => input.brokers.find((b) => b.url === url)?.ok ?? true;
  const filter = ui.mode === 'filter' ? ui.draft : ui.filter;
  const all = buildRows(input.state, input.journal, {
    now: input.now,
    filter,
    sort: ui.sort,
    linkOk,
    ...(input.staleFactor !== undefined ? { staleFactor: input.staleFactor } : {}),
  });
  const ids = all.map((r) => r.id);
  const targets = all.map((r) => r.targets[0]?.key);
  const header = headerLines(input, all.length);
  if (ui.mode === 'detail') {
    const agent = ui.selected ? input.state.agents.get(ui.selected) : undefined;
    const body = agent
      ? detailLines(agent, input.journal.agents.get(agent.id), {
          now: input.now,
          linkOk,
          ...(input.staleFactor !== undefined ? { staleFactor: input.staleFactor } : {}),
        })
      : ['(this agent is gone)'];
    const shown = body.slice(ui.detailTop, ui.detailTop + page + 1);
    const status =
      ui.notice !== undefined
        ? printable(ui.notice)
        : `detail ${ui.detailTop + 1}-${Math.min(body.length, ui.detailTop + page + 1)} of ${body.length} · ↑↓ PgUp/PgDn · p republish · R reset · Esc back · q quit`;
    const lines = [...header, ...pad(shown, page + 1), paint(status, noticeStyle(ui), input.color)];
    return {
      lines: lines.map((l) => fitLine(l, cols)),
      ids,
      targets,
      page: page + 1,
      detailLines: body.length,
    };
  }
  const selectedAt = Math.max(0, ui.selected === undefined ? 0 : ids.indexOf(ui.selected));
  const top = Math.min(ui.top, Math.max(0, all.length - page));
  const first = selectedAt < top ? selectedAt : selectedAt >= top + page ? selectedAt - page + 1 : top;
  const table = layoutTable(
    COLUMNS,
    all.map((r, i) => cells(r, input.now, i === selectedAt)),
    cols,
    input.color,
  );
  const body = table.slice(1 + first, 1 + first + page).map((l, i) =>
    // The selected row in reverse video; its ▶ marker also shows without colour (and in captures).
    first + i === selectedAt && input.color ? `\x1b[7m${l}\x1b[0m` : l,
  );
  if (all.length === 0)
    body.push(
      filter
        ? `no agent matches "${printable(filter)}"`
        : 'no agents yet (waiting for retained replug/+/status)',
    );
  const lines = [...header, table[0] ?? '', ...pad(body, page), statusBar(input, first, page, all.length)];
  return { lines: lines.map((l) => fitLine(l, cols)), ids, targets, page, detailLines: 0 };
}

/** A request's notice stands out (bold); the key help is dim. */
function noticeStyle(ui: ScreenInput['ui']): 'bold' | 'dim' {
  return ui.notice !== undefined ? 'bold' : 'dim';
}

function pad(lines: string[], n: number): string[] {
  const out = lines.slice(0, n);
  while (out.length < n) out.push('');
  return out;
}

function headerLines(input: ScreenInput, shown: number): string[] {
  const agents = buildRows(input.state, input.journal, {
    now: input.now,
    linkOk: (url) => input.brokers.find((b) => b.url === url)?.ok ?? true,
    ...(input.staleFactor !== undefined ? { staleFactor: input.staleFactor } : {}),
  });
  const n = (f: (r: ViewRow) => boolean) => agents.filter(f).length;
  const counts = [
    `${agents.length} agents`,
    `${n((r) => r.liveness === 'online')} online`,
    `${n((r) => r.liveness === 'offline')} offline`,
    `${n((r) => r.liveness === 'unknown')} unknown`,
    `${n((r) => r.stale)} stale`,
    `${n((r) => r.targets.some((t) => t.current && t.state !== 'up'))} targets down`,
  ];
  const first = paint(
    `replug watch · ${counts.join(' · ')}${shown !== agents.length ? ` · ${shown} shown` : ''}`,
    'bold',
    input.color,
  );
  const c = input.state.counters;
  const warnings = WARNING_REASONS.reduce((s, r) => s + c.rejected[r], 0);
  const links = input.brokers.map((b) =>
    paint(printable(`${b.url} (${b.state})`), b.ok ? 'cyan' : 'red', input.color),
  );
  const tail = `${c.received} msgs · ${warnings} warnings${(input.dropped ?? 0) > 0 ? ` · ${input.dropped} dropped` : ''}`;
  return [first, `${links.join('  ')}  ${paint(tail, warnings > 0 ? 'yellow' : 'dim', input.color)}`];
}

function statusBar(input: ScreenInput, first: number, page: number, total: number): string {
  const { ui } = input;
  if (ui.mode === 'filter')
    return paint(
      `/${printable(ui.draft)}█  (Enter keep · Esc cancel · matches agent, runtime, target, state)`,
      'bold',
      input.color,
    );
  const range = total === 0 ? '0 of 0' : `${first + 1}-${Math.min(total, first + page)} of ${total}`;
  const filter = ui.filter ? ` · filter "${printable(ui.filter)}"` : '';
  const head = `${range} · sort ${SORT_LABELS[ui.sort]}${filter}`;
  if (ui.notice !== undefined) return paint(printable(ui.notice), 'bold', input.color);
  // The longest key help that fits: on 80 columns the scrolling keys go first (they are the obvious ones).
  const helps = [
    ' · ↑↓ PgUp PgDn Home End · / filter · s sort · Enter detail · p republish · R reset · q quit',
    ' · / filter · s sort · Enter detail · p republish · R reset · q quit',
    ' · / filter · s sort · Enter detail · q quit',
    ' · / s Enter p R q',
  ];
  const help = helps.find((h) => head.length + h.length <= input.cols) ?? '';
  return paint(`${head}${help}`, 'dim', input.color);
}

function cells(r: ViewRow, now: number, selected: boolean): Cell[] {
  const style =
    r.liveness === 'online' ? (r.stale ? 'yellow' : 'green') : r.liveness === 'offline' ? 'red' : 'yellow';
  // The boot counter is in the detail pane; here the width goes to what needs attention.
  const status = `${r.liveness}${r.stale && r.stateTs !== null ? ` STALE ${span(now - r.stateTs)}` : ''}`;
  const t = r.targets[0];
  const more = r.targets.length > 1 ? ` +${r.targets.length - 1}` : '';
  const last = r.lastEvent ? `${ago(now - r.lastEvent.ts)}: ${r.lastEvent.summary}` : '';
  return [
    { text: `${selected ? '▶' : ' '} ${r.agent}`, style },
    { text: status, style },
    { text: t ? `${t.key}${more}` : '' },
    t ? sessionCell(t) : { text: '' },
    { text: t ? downCell(t, now) : '' },
    { text: r.runtime },
    { text: t ? String(t.reconnects) : '', ...(t && t.failed > 0 ? { style: 'red' as const } : {}) },
    { text: duration(r.p95Ms) },
    { text: r.devices === null ? '' : String(r.devices) },
    { text: last, style: 'dim' },
  ];
}

/** An offline or unknown agent's target state is history: `last: up`, dim, never a green "up". */
function sessionCell(t: TargetRow): Cell {
  const text = `${t.current ? '' : 'last: '}${t.state}${t.lastError ? ` ${t.lastError}` : ''}`;
  if (!t.current) return { text, style: 'dim' };
  return { text, style: t.state === 'up' ? 'green' : t.state === 'backoff' ? 'red' : 'yellow' };
}

/** The last replug's downtime (removed → up), or how long it has been down now. */
export function downCell(t: TargetRow, now: number): string {
  if (t.downtime.downSince !== undefined) return `down ${duration(now - t.downtime.downSince)}`;
  return duration(t.downtime.lastMs);
}
