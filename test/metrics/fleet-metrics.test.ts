/**
 * The exporter over a store (pure parts): the series bound, heal steps counted from heal.step events, and
 * prom-client kept out of the agent unless --metrics is given.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as prom from 'prom-client';
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { feedJournal, ViewJournal } from '../../src/fleet/view/journal.js';
import { fleetRegistry } from '../../src/metrics/fleet-metrics.js';
import { buildStatus, infoFor, msg, T0, targetFor } from '../fleet/sim.js';

function fleet(n: number) {
  const state = emptyFleet();
  const journal = new ViewJournal();
  for (let i = 0; i < n; i++) {
    for (const m of [
      msg(`replug/a${i}/status`, buildStatus('online', 1, T0)),
      msg(`replug/a${i}/info`, infoFor(`a${i}`, 1)),
      msg(`replug/a${i}/target/1209-0001-abc123/state`, targetFor(1, {}, T0)),
    ])
      feedJournal(journal, state, m.broker, reduce(state, m).outcome);
  }
  return { state, journal };
}

describe('fleetRegistry', () => {
  it('exports at most maxAgents agents whole and counts the rest', async () => {
    const { state, journal } = fleet(5);
    const { registry } = fleetRegistry(prom, { state: () => state, journal }, 2);
    const text = await registry.metrics();
    const agents = new Set([...text.matchAll(/agent="([^"]+)"/g)].map((m) => m[1]));
    expect([...agents].sort()).toEqual(['a0', 'a1']);
    expect(text).toMatch(/^replug_metrics_agents_unexported 3$/m);
    expect(text).toMatch(
      /replug_target_reconnects_total\{agent="a0",runtime="native",target="1209:0001:ABC123",outcome="ok"\} 2/,
    );
  });

  it('counts heal.step events by step, and reconnect durations in the histogram', async () => {
    const { state, journal } = fleet(1);
    const { registry, close } = fleetRegistry(prom, { state: () => state, journal });
    const agent = state.agents.get('mqtt://a:1883 a0');
    if (!agent) throw new Error('no agent');
    const target = '1209:0001:ABC123';
    journal.note(agent, { type: 'heal.step', ts: T0, target, step: 'usb-reset' }, 'heal');
    journal.note(agent, { type: 'heal.step', ts: T0, target, step: 'usb-reset' }, 'heal');
    journal.note(agent, { type: 'reconnect.succeeded', ts: T0, target, durationMs: 300 }, 'reconnected');
    const text = await registry.metrics();
    expect(text).toMatch(
      /replug_heal_steps_total\{agent="a0",runtime="native",target="1209:0001:ABC123",step="usb-reset"\} 2/,
    );
    expect(text).toMatch(
      /replug_reconnect_duration_seconds_bucket\{le="0.5",agent="a0",runtime="native",target="1209:0001:ABC123"\} 1/,
    );
    expect(text).toMatch(
      /replug_reconnect_duration_seconds_bucket\{le="0.25",agent="a0",runtime="native",target="1209:0001:ABC123"\} 0/,
    );
    close();
    journal.note(agent, { type: 'reconnect.succeeded', ts: T0, target, durationMs: 300 }, 'reconnected');
    expect(await registry.metrics()).toMatch(/replug_reconnect_duration_seconds_count\{[^}]*\} 1$/m);
  });

  it('src/ imports prom-client only lazily (issue 17: idle memory)', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk('src');
    const eager = files.filter((f) =>
      /^import (?!type )[^;]*from 'prom-client'/m.test(readFileSync(f, 'utf8')),
    );
    expect(eager).toEqual([]);
    expect(readFileSync('src/metrics/server.ts', 'utf8')).toContain("await import('prom-client')");
  });
});
