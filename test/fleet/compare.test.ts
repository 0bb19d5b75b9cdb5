/** --compare figures from known inputs: sums, success rates, pooled and bounded percentiles, sources. */
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { compareRuntimes } from '../../src/fleet/compare.js';
import { renderCompare } from '../../src/fleet/render-compare.js';
import type { FleetState } from '../../src/fleet/types.js';
import {
  buildHealth,
  buildStatus,
  CONTAINER,
  device,
  eventFor,
  health,
  infoFor,
  msg,
  NATIVE,
  T0,
  targetFor,
} from './sim.js';

function agent(
  s: FleetState,
  id: string,
  runtime: typeof NATIVE,
  rc: { count: number; ok: number; p50: number; p95: number },
) {
  const feed = (topic: string, payload: unknown) => {
    s = reduce(s, msg(`replug/${id}/${topic}`, payload)).state;
  };
  feed('status', buildStatus('online', 1, T0));
  feed('info', infoFor(id, 1, runtime));
  feed(
    'health',
    buildHealth(health, { depth: 0, dropped: 0, capacity: 10 }, { connected: true, reconnects: 0 }, 1, T0),
  );
  feed(
    'target/1209-0001/state',
    targetFor(1, {
      target: '1209:0001',
      serial: undefined,
      state: 'up',
      reconnects: { count: rc.count, ok: rc.ok, failed: rc.count - rc.ok, p50Ms: rc.p50, p95Ms: rc.p95 },
    }),
  );
  return s;
}

function fleet(): FleetState {
  let s = emptyFleet();
  s = agent(s, 'n1', NATIVE, { count: 10, ok: 9, p50: 10, p95: 30 });
  s = agent(s, 'n2', NATIVE, { count: 10, ok: 10, p50: 20, p95: 50 });
  s = agent(s, 'c1', CONTAINER, { count: 4, ok: 2, p50: 100, p95: 400 });
  return s;
}

describe('compareRuntimes', () => {
  it('sums the agents’ counters per runtime and bounds percentiles by the largest agent figure', () => {
    const c = compareRuntimes(fleet());
    expect(c.runtimes).toEqual(['native', 'container-hostnet']);
    expect(c.targets).toHaveLength(1);
    const t = c.targets[0]!;
    expect(t.target).toBe('1209:0001');
    expect(t.byRuntime.native).toEqual({
      agents: 2,
      count: 20,
      ok: 19,
      failed: 1,
      successRate: 0.95,
      p50Ms: 20,
      p95Ms: 50,
      approx: true,
      states: { up: 2 },
    });
    expect(t.byRuntime['container-hostnet']).toMatchObject({
      count: 4,
      ok: 2,
      successRate: 0.5,
      p50Ms: 100,
      p95Ms: 400,
      approx: false,
    });
    // Two native agents with the fixture's health counters and info sources (devfs active, nusb unavailable).
    expect(c.sources.native).toEqual({
      devfs: { active: 2, unavailable: 0, seen: 6, missed: 0, meanLatencyMs: 0, maxLatencyMs: 0 },
      nusb: { active: 0, unavailable: 2, seen: 0, missed: 0, meanLatencyMs: null, maxLatencyMs: null },
      sysfs: { active: 0, unavailable: 0, seen: 4, missed: 2, meanLatencyMs: 400, maxLatencyMs: 900 },
    });
  });

  it('uses exact pooled percentiles once reconnect events were seen', () => {
    let s = fleet();
    const durations = [5, 10, 15, 20, 100];
    durations.forEach((ms, i) => {
      const e = eventFor(
        'reconnect.succeeded',
        { target: '1209:0001', attempts: 1, device, durationMs: ms },
        i + 1,
        1,
      );
      s = reduce(s, msg(`replug/${i % 2 ? 'n1' : 'n2'}/event`, e)).state;
    });
    const native = compareRuntimes(s).targets[0]!.byRuntime.native!;
    // nearest rank over [5,10,15,20,100]: p50 = 3rd = 15, p95 = 5th = 100
    expect(native).toMatchObject({ p50Ms: 15, p95Ms: 100, approx: false });
  });

  it('renders native first with rates, bounds and per-source columns', () => {
    const text = renderCompare(compareRuntimes(fleet()), { width: 120, color: false });
    const lines = text.split('\n');
    const header = lines.find((l) => l.includes('TARGET'))!;
    expect(header.indexOf('native')).toBeLessThan(header.indexOf('container-hostnet'));
    const row = lines.find((l) => l.trim().startsWith('1209:0001'))!;
    expect(row).toContain('19/20 (95%) ≤20/≤50ms');
    expect(row).toContain('2/4 (50%) 100/400ms');
    expect(lines.find((l) => l.trim().startsWith('nusb'))).toContain('0 (2 unavail)');
    expect(text).not.toContain('\x1b[');
    for (const width of [40, 80]) {
      const narrow = renderCompare(compareRuntimes(fleet()), { width, color: false }).split('\n');
      expect(Math.max(...narrow.map((l) => l.length))).toBeLessThanOrEqual(width);
      expect(narrow.some((l) => l.includes('native'))).toBe(true);
    }
  });
});
