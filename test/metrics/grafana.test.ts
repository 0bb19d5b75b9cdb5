/** deploy/grafana/replug.json: valid JSON whose every query names only metrics replug exports. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dash = JSON.parse(
  readFileSync(new URL('../../deploy/grafana/replug.json', import.meta.url), 'utf8'),
) as {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { query: unknown }[] };
};
const EXPORTED = new Set([
  'replug_agent_up',
  'replug_target_session_state',
  'replug_target_reconnects_total',
  'replug_reconnect_duration_seconds_bucket',
  'replug_heal_steps_total',
  'replug_detection_latency_seconds_bucket',
  'replug_detection_seen_total',
  'replug_detection_misses_total',
  'replug_queue_depth',
  'replug_queue_dropped_total',
  'replug_broker_connected',
  'replug_broker_reconnects_total',
  'replug_metrics_agents_unexported',
  'replug_watch_broker_up',
]);

describe('the Grafana dashboard', () => {
  it('queries only exported metric names, and every panel has a query', () => {
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(dash.panels.every((p) => p.targets.length > 0)).toBe(true);
    const names = exprs.flatMap((e) => [...e.matchAll(/\breplug_[a-z_]+/g)].map((m) => m[0]));
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !EXPORTED.has(n))).toEqual([]);
  });
});
