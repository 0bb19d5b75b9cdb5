/**
 * What the web page receives: the rows of the terminal view (same model, so the same filter words), the
 * native-vs-container comparison per target, chart samples, and per agent the detail lines and last
 * events. Bounded: rows for at most MAX_ROWS agents (the page says how many were left out).
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
  const shown = rows.slice(0, MAX_ROWS).map((r) => {
    const a = state.agents.get(r.id);
    const j = s.journal.agents.get(r.id);
    return {
      ...r,
      detail: a ? detailLines(a, j, { now, linkOk, staleFactor: s.staleFactor }) : [],
    };
  });
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
