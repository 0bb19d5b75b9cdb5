/** Key decoding and the view's state machine (pure). */
import { describe, expect, it } from 'vitest';
import { decodeKeys, handleKey, initialUi, scrollTo } from '../../../src/fleet/view/keys.js';

const ids = Array.from({ length: 100 }, (_, i) => `b a${i}`);
const ctx = { ids, page: 20, detailLines: 30 };

describe('decodeKeys', () => {
  it('reads xterm, rxvt and SS3 sequences, lone Escape, Ctrl-C and text', () => {
    expect(decodeKeys('\x1b[A\x1b[B\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~\x1bOH\x1bOF')).toEqual([
      'up',
      'down',
      'pageup',
      'pagedown',
      'home',
      'end',
      'home',
      'end',
      'home',
      'end',
    ]);
    expect(decodeKeys('\x1b')).toEqual(['escape']);
    expect(decodeKeys('\x03\r\x7f/s')).toEqual([
      'ctrl-c',
      'enter',
      'backspace',
      { char: '/' },
      { char: 's' },
    ]);
    // A sequence this view does not use (F5) is skipped whole, not read as Escape + text.
    expect(decodeKeys('\x1b[15~q')).toEqual([{ char: 'q' }]);
  });
});

describe('handleKey', () => {
  it('moves, pages and keeps the selection on screen', () => {
    let ui = initialUi();
    for (const k of ['down', 'down', 'pagedown'] as const) ui = handleKey(ui, k, ctx) as typeof ui;
    expect(ui.selected).toBe('b a22');
    expect(ui.top).toBe(3);
    ui = handleKey(ui, 'end', ctx) as typeof ui;
    expect([ui.selected, ui.top]).toEqual(['b a99', 80]);
    ui = handleKey(ui, 'pageup', ctx) as typeof ui;
    expect([ui.selected, ui.top]).toEqual(['b a79', 79]);
    ui = handleKey(ui, 'home', ctx) as typeof ui;
    expect([ui.selected, ui.top]).toEqual(['b a0', 0]);
  });

  it('filters live, keeps on Enter, cancels on Escape; q inside the filter is text', () => {
    let ui = handleKey(initialUi(), { char: '/' }, ctx) as ReturnType<typeof initialUi>;
    for (const c of 'pq') ui = handleKey(ui, { char: c }, ctx) as typeof ui;
    expect(ui).toMatchObject({ mode: 'filter', draft: 'pq', filter: '' });
    ui = handleKey(ui, 'backspace', ctx) as typeof ui;
    ui = handleKey(ui, 'enter', ctx) as typeof ui;
    expect(ui).toMatchObject({ mode: 'list', filter: 'p' });
    ui = handleKey(ui, { char: '/' }, ctx) as typeof ui;
    ui = handleKey(ui, { char: 'x' }, ctx) as typeof ui;
    ui = handleKey(ui, 'escape', ctx) as typeof ui;
    expect(ui).toMatchObject({ mode: 'list', filter: 'p' });
    ui = handleKey(ui, 'escape', ctx) as typeof ui;
    expect(ui.filter).toBe('');
  });

  it('cycles the sort, opens and scrolls the detail pane, quits on q and Ctrl-C', () => {
    let ui = initialUi();
    const sorts: string[] = [];
    for (let i = 0; i < 4; i++) {
      ui = handleKey(ui, { char: 's' }, ctx) as typeof ui;
      sorts.push(ui.sort);
    }
    expect(sorts).toEqual(['state', 'last', 'p95', 'agent']);
    ui = handleKey(ui, 'enter', ctx) as typeof ui;
    expect(ui).toMatchObject({ mode: 'detail', selected: 'b a0' });
    ui = handleKey(ui, 'end', ctx) as typeof ui;
    expect(ui.detailTop).toBe(10);
    ui = handleKey(ui, 'escape', ctx) as typeof ui;
    expect(ui.mode).toBe('list');
    expect(handleKey(ui, { char: 'q' }, ctx)).toBe('quit');
    expect(handleKey({ ...ui, mode: 'filter' }, 'ctrl-c', ctx)).toBe('quit');
  });

  it('scrollTo never leaves a short last page', () => {
    expect(scrollTo(0, 99, 20, 100)).toBe(80);
    expect(scrollTo(50, 10, 20, 100)).toBe(10);
    expect(scrollTo(0, 3, 20, 5)).toBe(0);
  });
});

describe('handleKey: requests for the selected agent (issue 18)', () => {
  const targets = ids.map((_, i) => (i === 3 ? undefined : `1209:000${i % 10}`));
  const rctx = { ...ctx, targets };
  const press = (ui: ReturnType<typeof initialUi>, ...chars: string[]) =>
    chars.reduce((u, c) => {
      const next = handleKey(u, { char: c }, rctx);
      if (next === 'quit') throw new Error('quit');
      return next;
    }, ui);

  it('p sends republish to the selected row, or the first row when none is selected', () => {
    const first = press(initialUi(), 'p');
    expect(first.send).toEqual({ action: 'republish', id: 'b a0' });
    expect(first.notice).toBe('republish a0: asking...');
    const on5 = press({ ...initialUi(), selected: 'b a5' }, 'p');
    expect(on5.send).toEqual({ action: 'republish', id: 'b a5' });
  });

  it('R asks first, R or y sends the reset of the first target, any other key cancels', () => {
    const asked = press({ ...initialUi(), selected: 'b a2' }, 'R');
    expect(asked.send).toBeUndefined();
    expect(asked.confirm).toEqual({ action: 'reset', id: 'b a2', target: '1209:0002' });
    expect(asked.notice).toBe('reset a2 1209:0002? R or y sends it, any other key cancels');
    for (const c of ['R', 'y']) {
      const sent = press(asked, c);
      expect(sent.send).toEqual({ action: 'reset', id: 'b a2', target: '1209:0002' });
      expect(sent.confirm).toBeUndefined();
    }
    const cancelled = handleKey(asked, 'down', rctx);
    expect(cancelled).toMatchObject({ selected: 'b a2', notice: 'reset a2 1209:0002: not sent' });
    expect((cancelled as { send?: unknown; confirm?: unknown }).send).toBeUndefined();
    expect((cancelled as { confirm?: unknown }).confirm).toBeUndefined();
    // The cancelling key does nothing else (here: the selection stays), and `n` cancels too.
    expect(press(asked, 'n')).toMatchObject({ notice: 'reset a2 1209:0002: not sent' });
    expect(press(asked, 'n').send).toBeUndefined();
  });

  it('an agent without a target cannot be reset; nothing is sent with no rows', () => {
    const none = press({ ...initialUi(), selected: 'b a3' }, 'R');
    expect(none.confirm).toBeUndefined();
    expect(none.notice).toBe('reset a3: it has no target');
    const empty = handleKey(initialUi(), { char: 'p' }, { ids: [], page: 20, detailLines: 0 });
    expect(empty).toMatchObject({ notice: 'no agent selected' });
    expect((empty as { send?: unknown }).send).toBeUndefined();
  });

  it('works in the detail pane, on the agent it shows; y alone sends nothing', () => {
    const detail = { ...initialUi(), mode: 'detail' as const, selected: 'b a7' };
    expect(press(detail, 'p').send).toEqual({ action: 'republish', id: 'b a7' });
    expect(press(detail, 'p').mode).toBe('detail');
    expect(press(detail, 'R', 'y').send).toEqual({ action: 'reset', id: 'b a7', target: '1209:0007' });
    expect(press(detail, 'y').send).toBeUndefined();
  });

  it('the notice and a pending send last one key; in the filter, p and R are text', () => {
    const sent = press(initialUi(), 'p');
    const after = handleKey(sent, 'down', rctx) as ReturnType<typeof initialUi>;
    expect(after.notice).toBeUndefined();
    expect(after.send).toBeUndefined();
    expect(after.selected).toBe('b a1');
    const typing = press(initialUi(), '/', 'p', 'R');
    expect(typing.draft).toBe('pR');
    expect(typing.send).toBeUndefined();
  });
});
