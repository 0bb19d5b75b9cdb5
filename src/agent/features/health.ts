/**
 * Feature `health`: the retained `health` topic every --health-interval, and once more when the event
 * backlog is gone, if the last one published showed events queued (issue 10: health published on connect,
 * before the queue drained, kept a stale "queued events" for 30 s, retained).
 */
import type { Feature, FeatureContext } from '../features.js';
import { healthInput } from '../health.js';

function publish(ctx: FeatureContext): void {
  const relay = ctx.reports.relay;
  const input = healthInput({
    startedAt: ctx.startedAt,
    clock: ctx.clock,
    watcher: ctx.watcher,
    relay: relay ? { stats: relay } : undefined,
    faults: 0,
  });
  // Heal and action totals (issue 15), when either is configured.
  const heal = ctx.services.heal?.totals();
  const actions = ctx.reports.actions?.();
  if (heal || actions) {
    const none = { climbs: 0, healed: 0, exhausted: 0, refused: 0 };
    input.heal = { ...(heal ?? none), actions: actions ?? { ok: 0, failed: 0, timeout: 0 } };
  }
  ctx.publisher.setHealth(input);
}

export const healthTopic = (): Feature => ({
  name: 'health',
  start(ctx) {
    const { publisher } = ctx;
    ctx.on('agent.ready', () => publish(ctx));
    ctx.every(ctx.config.healthIntervalMs, 'the health report', () => publish(ctx));
    // The retained health is rebuilt on every connect, with the queue as it is then: while the backlog
    // drains, that figure goes stale. Once it is gone, say so.
    const drained = publisher.delivery?.on('drained', () => {
      if (publisher.shownHealthDepth() > 0) publisher.retained.refresh(publisher.topics.health);
    });
    if (drained) ctx.onStop(drained);
  },
});
