/** The view's pure parts: rows, stale marker, downtime, relative times, and screens that fit. */
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../../src/fleet/aggregate.js';
import { ago, duration } from '../../../src/fleet/view/format.js';
import { feedJournal, ViewJournal } from '../../../src/fleet/view/journal.js';
import { initialUi } from '../../../src/fleet/view/keys.js';
import { buildRows } from '../../../src/fleet/view/model.js';
import { renderScreen } from '../../../src/fleet/view/screen-render.js';
import { buildHealth, buildStatus, eventFor, health, infoFor, msg, T0, targetFor } from '../sim.js';

function fleet(n: number) {
  const state = emptyFleet();
  const journal = new ViewJournal();
  const apply = (m: ReturnType<typeof msg>) =>
    feedJournal(journal, state, m.broker, reduce(state, m).outcome);
  for (let i = 0; i < n; i++) {
    const id = `pi-${i}`;
    apply(msg(`replug/${id}/status`, buildStatus('online', 1, T0)));
    apply(msg(`replug/${id}/info`, infoFor(id, 1)));
    apply(msg(`replug/${id}/target/1209-0001-abc123/state`, targetFor(1, {}, T0)));
  }
  return { state, journal, apply };
}

describe('the view model', () => {
  it('measures the last replug (session left up → up again) and says while it is down', () => {
    const { state, journal, apply } = fleet(1);
    const target = '1209:0001:ABC123';
    apply(
      msg(
        'replug/pi-0/event',
        eventFor('session.state', { target, state: 'waiting', previous: 'up' }, 1, 1, T0 + 1000),
        { retained: false },
      ),
    );
    let [row] = buildRows(state, journal, { now: T0 + 5000 });
    expect(row?.targets[0]?.downtime).toEqual({ downSince: T0 + 1000 });
    apply(
      msg(
        'replug/pi-0/event',
        eventFor('session.state', { target, state: 'up', previous: 'starting' }, 2, 1, T0 + 2500),
        { retained: false },
      ),
    );
    [row] = buildRows(state, journal, { now: T0 + 5000 });
    expect(row?.targets[0]?.downtime).toEqual({ lastMs: 1500, lastUpAt: T0 + 2500 });
    expect(journal.agents.get(row?.id ?? '')?.events.map((e) => e.type)).toEqual([
      'session.state',
      'session.state',
    ]);
  });

  it('marks stale past N health intervals, learned from two health payloads', () => {
    const { state, journal, apply } = fleet(1);
    const h = (ts: number) =>
      buildHealth(health, { depth: 0, dropped: 0, capacity: 10 }, { connected: true, reconnects: 0 }, 1, ts);
    apply(msg('replug/pi-0/health', h(T0)));
    apply(msg('replug/pi-0/health', h(T0 + 5000)));
    expect(buildRows(state, journal, { now: T0 + 5000 + 15_000 })[0]?.stale).toBe(false);
    expect(buildRows(state, journal, { now: T0 + 5000 + 15_001 })[0]?.stale).toBe(true);
    expect(buildRows(state, journal, { now: T0 + 5000 + 15_001, staleFactor: 4 })[0]?.stale).toBe(false);
  });

  it('filters on every term and sorts', () => {
    const { state, journal } = fleet(12);
    expect(buildRows(state, journal, { now: T0, filter: 'PI-1 native' }).map((r) => r.agent)).toEqual([
      'pi-1',
      'pi-10',
      'pi-11',
    ]);
    expect(buildRows(state, journal, { now: T0, filter: 'docker' })).toEqual([]);
  });
});

describe('renderScreen', () => {
  it('returns exactly the terminal height, every line within the width, at any size', () => {
    const { state, journal } = fleet(100);
    for (const [cols, rows] of [
      [40, 10],
      [80, 24],
      [160, 50],
      [20, 3],
    ] as const) {
      const s = renderScreen({
        state,
        journal,
        ui: initialUi(),
        now: T0,
        cols,
        rows,
        color: false,
        brokers: [],
      });
      expect(s.lines.length).toBe(Math.max(5, rows));
      for (const l of s.lines) expect(l.length).toBeLessThanOrEqual(cols);
      expect(s.ids).toHaveLength(100);
    }
  });
});

describe('relative times', () => {
  it('reads like a person says it', () => {
    expect([
      ago(200),
      ago(12_000),
      ago(4 * 60_000),
      ago(3 * 3_600_000),
      ago(2 * 86_400_000),
      ago(-5000),
    ]).toEqual(['now', '12s ago', '4m ago', '3h ago', '2d ago', 'in 5s']);
    expect([duration(340), duration(1234), duration(14_200), duration(125_000), duration(null)]).toEqual([
      '340ms',
      '1.2s',
      '14s',
      '2m05s',
      '',
    ]);
  });
});
