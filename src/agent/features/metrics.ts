/**
 * Feature `metrics` (issue 19): `--metrics [HOST:]PORT` serves this agent's Prometheus metrics. The agent
 * is exported as a fleet of one, through the same store and exporter as `replug watch --metrics`
 * (src/metrics/fleet-metrics.ts), so both endpoints carry the same names and labels by construction: its
 * retained payloads (what it says on MQTT) are read at scrape time, its events are fed as they happen.
 * Off by default; prom-client is loaded only when enabled (issue 17).
 */
import { AGENT_EVENT_NAMES } from '../../events.js';
import { buildEvent, buildHealth, eventDraft } from '../../mqtt/payloads.js';
import type { Feature, FeatureContext } from '../features.js';
import { healthInput } from '../health.js';

const BROKER = 'local';

/** The fleet store and the exporter, loaded when the feature starts (off by default: an idle agent without
 * --metrics does not hold them, issue 17). */
async function loadParts() {
  const [aggregate, journal, server] = await Promise.all([
    import('../../fleet/aggregate.js'),
    import('../../fleet/view/journal.js'),
    import('../../metrics/server.js'),
  ]);
  return { ...aggregate, ...journal, ...server };
}

function feeder(ctx: FeatureContext, parts: Awaited<ReturnType<typeof loadParts>>) {
  const { emptyFleet, feedJournal, reduce, ViewJournal } = parts;
  const state = emptyFleet();
  const journal = new ViewJournal();
  const feed = (topic: string, payload: unknown, retained: boolean) => {
    const msg = {
      broker: BROKER,
      topic,
      payload: Buffer.from(JSON.stringify(payload)),
      retained,
      receivedAt: ctx.clock.now(),
    };
    feedJournal(journal, state, BROKER, reduce(state, msg).outcome);
  };
  /** The retained topics as they are now; health built here (its publisher builder records what was shown). */
  const refresh = () => {
    const { publisher } = ctx;
    for (const topic of publisher.retained.topics()) {
      if (topic === publisher.topics.health || !topic.startsWith('replug/')) continue;
      const value = publisher.retained.peek(topic);
      if (value !== undefined) feed(topic, value, true);
    }
    const relay = ctx.reports.relay;
    const input = healthInput({
      startedAt: ctx.startedAt,
      clock: ctx.clock,
      watcher: ctx.watcher,
      relay: relay ? { stats: relay } : undefined,
      faults: 0,
    });
    const queue = publisher.delivery?.stats() ?? { depth: 0, dropped: 0, capacity: ctx.config.queueCapacity };
    const link = { connected: publisher.client.isUp, reconnects: publisher.client.reconnects };
    feed(
      publisher.topics.health,
      buildHealth(input, queue, link, ctx.identity.session, ctx.clock.now()),
      true,
    );
  };
  return { state, journal, feed, refresh };
}

export const metrics = (): Feature => ({
  name: 'metrics',
  enabled: (config) => config.metrics !== undefined,
  async start(ctx) {
    const at = ctx.config.metrics;
    if (!at) return;
    const parts = await loadParts();
    const f = feeder(ctx, parts);
    let seq = 0;
    // Events are labelled with the runtime from the agent's info: read the retained state before the first.
    f.refresh();
    // Its own numbering: only the store's de-duplication sees it, never MQTT.
    for (const name of AGENT_EVENT_NAMES)
      ctx.on(name, (data) =>
        f.feed(
          ctx.publisher.topics.event,
          buildEvent(eventDraft(name, data as never, ctx.clock.now()), ++seq, ctx.identity.session),
          false,
        ),
      );
    const server = await parts.startMetricsServer(at, {
      state: () => {
        f.refresh();
        return f.state;
      },
      journal: f.journal,
    });
    ctx.onStop(() => server.close());
    ctx.log.info({ url: `${server.url}/metrics` }, `metrics on ${server.url}/metrics`);
  },
});
