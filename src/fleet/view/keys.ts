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
  /** One line for the status bar: a request's progress or outcome, until the next key. */
  notice?: string;
  /** A reset asked for and not yet confirmed (`R` again or `y` sends it; any other key cancels). */
  confirm?: AgentRequest;
  /** A request to send: terminal.ts sends it and clears it; the key handling stays pure. */
  send?: AgentRequest;
}

/** A request for the selected agent (issue 18), addressed by its row id (`${broker} ${agent}`). */
export interface AgentRequest {
  action: 'republish' | 'reset';
  id: string;
  /** reset: the target key (the agent's first target). */
  target?: string;
}

/** The agent id of a row id: the id is `${broker} ${agent}` and agent ids have no spaces. */
export const agentOf = (id: string): string => id.slice(id.lastIndexOf(' ') + 1);

/** How a request reads in the status line: `republish pi-7`, `reset pi-7 1209:0001`. */
export const describeRequest = (r: AgentRequest): string =>
  `${r.action} ${agentOf(r.id)}${r.target ? ` ${r.target}` : ''}`;

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
  /** The first target key of each row, parallel to `ids` (the reset key's target). */
  targets?: readonly (string | undefined)[];
}

/** The state after one key, or 'quit'. */
export function handleKey(ui: UiState, key: Key, ctx: KeyContext): UiState | 'quit' {
  if (key === 'ctrl-c') return 'quit';
  if (ui.mode === 'filter') return filterKey(ui, key);
  if (typeof key === 'object' && key.char === 'q') return 'quit';
  // A notice and an unconfirmed reset last until the next key; a request key may set them again.
  const { notice: _n, confirm, send: _s, ...rest } = ui;
  const base: UiState = rest;
  if (typeof key === 'object') {
    const asked = requestKey(base, confirm, key.char, ctx);
    if (asked) return asked;
  }
  if (confirm) return { ...base, notice: `${describeRequest(confirm)}: not sent` };
  if (ui.mode === 'detail') return detailKey(base, key, ctx);
  return listKey(base, key, ctx);
}

/**
 * `p` republishes the selected agent's retained state; `R` asks for a reset of its first target, sent on
 * a second `R` or `y` (a reset restarts a session: one stray key must not do it).
 */
function requestKey(
  ui: UiState,
  confirm: AgentRequest | undefined,
  char: string,
  ctx: KeyContext,
): UiState | undefined {
  if (confirm && (char === 'R' || char === 'y'))
    return { ...ui, send: confirm, notice: `${describeRequest(confirm)}: asking...` };
  if (char !== 'p' && char !== 'R') return undefined;
  const at = selectedAt(ui, ctx);
  const id = at === undefined ? undefined : ctx.ids[at];
  if (id === undefined) return { ...ui, notice: 'no agent selected' };
  if (char === 'p') {
    const send: AgentRequest = { action: 'republish', id };
    return { ...ui, selected: id, send, notice: `${describeRequest(send)}: asking...` };
  }
  const target = ctx.targets?.[at as number];
  if (target === undefined) return { ...ui, notice: `reset ${agentOf(id)}: it has no target` };
  const asked: AgentRequest = { action: 'reset', id, target };
  return {
    ...ui,
    selected: id,
    confirm: asked,
    notice: `${describeRequest(asked)}? R or y sends it, any other key cancels`,
  };
}

/** The selected row's index (the first row when none is selected yet), or undefined with no rows. */
function selectedAt(ui: UiState, ctx: KeyContext): number | undefined {
  if (ctx.ids.length === 0) return undefined;
  const i = ui.selected === undefined ? 0 : ctx.ids.indexOf(ui.selected);
  // In the list an unknown selection means the first row (as the arrows do); in the pane, it is gone.
  if (i >= 0) return i;
  return ui.mode === 'detail' ? undefined : 0;
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
