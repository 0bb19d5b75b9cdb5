/**
 * What the web page receives: the rows of the terminal view (same model, so the same filter words), the
 * native-vs-container comparison per target, chart samples, and per agent the detail lines and last
 * events (the detail pane on request, /api/agent?id=). Bounded: rows for at most MAX_ROWS agents (the page says how many were left out).
 */
import { compareRuntimes } from '../compare.js';
import type { FleetState } from '../types.js';
import { detailLines } from '../view/detail.js';
import type { ViewJournal } from '../view/journal.js';
import { buildRows } from '../view/model.js';

export const MAX_ROWS = 2000;

export interface SnapshotSources {
  state: () => FleetState;
  journal: ViewJournal;
  brokers: () => readonly { url: string; state: string; ok: boolean }[];
  staleFactor: number;
}

export function snapshot(s: SnapshotSources, now: number) {
  const brokers = s.brokers();
  const linkOk = (url: string) => brokers.find((b) => b.url === url)?.ok ?? true;
  const state = s.state();
  const rows = buildRows(state, s.journal, { now, linkOk, staleFactor: s.staleFactor, sort: 'state' });
  const shown = rows.slice(0, MAX_ROWS);
  return {
    now,
    brokers,
    total: rows.length,
    rows: shown,
    compare: compareRuntimes(state),
    reconnects: s.journal.reconnects.slice(-500),
    detections: s.journal.detections.slice(-500),
  };
}

/** One agent's detail pane (the terminal's lines), fetched by the page for the agent it has open. */
export function agentDetail(s: SnapshotSources, id: string, now: number): string[] | undefined {
  const a = s.state().agents.get(id);
  if (!a) return undefined;
  const brokers = s.brokers();
  const linkOk = (url: string) => brokers.find((b) => b.url === url)?.ok ?? true;
  return detailLines(a, s.journal.agents.get(id), { now, linkOk, staleFactor: s.staleFactor });
}
