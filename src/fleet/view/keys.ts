/**
 * Terminal input as key names, and what each key does to the view's state. Pure: the terminal driver
 * (terminal.ts) feeds raw stdin bytes in and renders the state that comes out.
 *
 * Sequences are xterm's (and tmux's, which sends the same): cursor keys as CSI A-D, PgUp/PgDn as
 * CSI 5~/6~, Home/End as CSI H/F, CSI 1~/4~, CSI 7~/8~ (rxvt) or SS3 H/F (application cursor mode).
 */
import { SORTS, type SortKey } from './model.js';

export type Key =
  | 'up'
  | 'down'
  | 'pageup'
  | 'pagedown'
  | 'home'
  | 'end'
  | 'enter'
  | 'escape'
  | 'backspace'
  | 'ctrl-c'
  | { char: string };

const SEQUENCES: [string, Key][] = [
  ['\x1b[A', 'up'],
  ['\x1bOA', 'up'],
  ['\x1b[B', 'down'],
  ['\x1bOB', 'down'],
  ['\x1b[5~', 'pageup'],
  ['\x1b[6~', 'pagedown'],
  ['\x1b[H', 'home'],
  ['\x1bOH', 'home'],
  ['\x1b[1~', 'home'],
  ['\x1b[7~', 'home'],
  ['\x1b[F', 'end'],
  ['\x1bOF', 'end'],
  ['\x1b[4~', 'end'],
  ['\x1b[8~', 'end'],
];

/** Splits one chunk of stdin into keys; unknown escape sequences are skipped whole. */
export function decodeKeys(chunk: string): Key[] {
  const keys: Key[] = [];
  let i = 0;
  while (i < chunk.length) {
    const rest = chunk.slice(i);
    const seq = SEQUENCES.find(([s]) => rest.startsWith(s));
    if (seq) {
      keys.push(seq[1]);
      i += seq[0].length;
      continue;
    }
    const c = chunk[i] as string;
    if (c === '\x1b') {
      // A lone ESC is the Escape key; ESC [ ... final byte is a sequence we do not use.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal input is the point.
      const m = /^\x1b[[O][0-9;]*[A-Za-z~]/.exec(rest);
      if (m) i += m[0].length;
      else {
        keys.push('escape');
        i++;
      }
      continue;
    }
    if (c === '\r' || c === '\n') keys.push('enter');
    else if (c === '\x7f' || c === '\b') keys.push('backspace');
    else if (c === '\x03') keys.push('ctrl-c');
    else if (c >= ' ') keys.push({ char: c });
    i++;
  }
  return keys;
}

export interface UiState {
  mode: 'list' | 'filter' | 'detail';
  /** Selected agent by id, so the selection follows it when rows re-sort. */
  selected?: string;
  /** First row shown (list) and first line shown (detail). */
  top: number;
  detailTop: number;
  filter: string;
  /** What is being typed after `/`; the rows follow it live. */
  draft: string;
  sort: SortKey;
}

export const initialUi = (): UiState => ({
  mode: 'list',
  top: 0,
  detailTop: 0,
  filter: '',
  draft: '',
  sort: 'agent',
});

export interface KeyContext {
  /** Row ids in display order (filtered, sorted). */
  ids: readonly string[];
  /** Body lines on screen. */
  page: number;
  /** Lines of the open detail pane. */
  detailLines: number;
}

/** The state after one key, or 'quit'. */
export function handleKey(ui: UiState, key: Key, ctx: KeyContext): UiState | 'quit' {
  if (key === 'ctrl-c') return 'quit';
  if (ui.mode === 'filter') return filterKey(ui, key);
  if (typeof key === 'object' && key.char === 'q') return 'quit';
  if (ui.mode === 'detail') return detailKey(ui, key, ctx);
  return listKey(ui, key, ctx);
}

function filterKey(ui: UiState, key: Key): UiState {
  if (key === 'enter') return { ...ui, mode: 'list', filter: ui.draft, top: 0 };
  if (key === 'escape') return { ...ui, mode: 'list', draft: ui.filter };
  if (key === 'backspace') return { ...ui, draft: ui.draft.slice(0, -1) };
  if (typeof key === 'object' && ui.draft.length < 64) return { ...ui, draft: ui.draft + key.char };
  return ui;
}

function detailKey(ui: UiState, key: Key, ctx: KeyContext): UiState {
  const max = Math.max(0, ctx.detailLines - ctx.page);
  const to = (n: number) => ({ ...ui, detailTop: Math.min(max, Math.max(0, n)) });
  switch (key) {
    case 'escape':
    case 'enter':
    case 'backspace':
      return { ...ui, mode: 'list', detailTop: 0 };
    case 'up':
      return to(ui.detailTop - 1);
    case 'down':
      return to(ui.detailTop + 1);
    case 'pageup':
      return to(ui.detailTop - ctx.page);
    case 'pagedown':
      return to(ui.detailTop + ctx.page);
    case 'home':
      return to(0);
    case 'end':
      return to(max);
    default:
      return ui;
  }
}

function listKey(ui: UiState, key: Key, ctx: KeyContext): UiState {
  const n = ctx.ids.length;
  const at = Math.max(0, ui.selected === undefined ? 0 : ctx.ids.indexOf(ui.selected));
  const move = (i: number) => select(ui, ctx, Math.min(n - 1, Math.max(0, i)));
  if (typeof key === 'object') {
    if (key.char === '/') return { ...ui, mode: 'filter', draft: ui.filter };
    if (key.char === 's')
      return { ...ui, sort: SORTS[(SORTS.indexOf(ui.sort) + 1) % SORTS.length] ?? 'agent' };
    if (key.char === 'k') return move(at - 1);
    if (key.char === 'j') return move(at + 1);
    return ui;
  }
  switch (key) {
    case 'up':
      return move(at - 1);
    case 'down':
      return move(at + 1);
    case 'pageup':
      return move(at - ctx.page);
    case 'pagedown':
      return move(at + ctx.page);
    case 'home':
      return move(0);
    case 'end':
      return move(n - 1);
    case 'enter':
      return n > 0 ? { ...ui, mode: 'detail', selected: ctx.ids[at], detailTop: 0 } : ui;
    case 'escape':
      return ui.filter ? { ...ui, filter: '', draft: '', top: 0 } : ui;
    default:
      return ui;
  }
}

function select(ui: UiState, ctx: KeyContext, i: number): UiState {
  if (ctx.ids.length === 0) return ui;
  return { ...ui, selected: ctx.ids[i], top: scrollTo(ui.top, i, ctx.page, ctx.ids.length) };
}

/** The first row to show so that row `i` is on a page of `page` rows. */
export function scrollTo(top: number, i: number, page: number, n: number): number {
  let t = top;
  if (i < t) t = i;
  if (i >= t + page) t = i - page + 1;
  return Math.max(0, Math.min(t, Math.max(0, n - page)));
}
