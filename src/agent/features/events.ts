/**
 * Feature `events`: every agent event on the bus goes to replug/<agent>/event through the durable queue
 * (QoS 1, seq, in order; src/mqtt/delivery.ts).
 */
import { AGENT_EVENT_NAMES, type AgentEventName } from '../../events.js';
import { stamp } from '../../usb/stamps.js';
import type { Feature, FeatureContext } from '../features.js';

function deliver<K extends AgentEventName>(ctx: FeatureContext, name: K): void {
  ctx.on(name, (...args) => {
    try {
      ctx.publisher.publishEvent(name, args[0]);
      const e = args[0] as { state?: string; device?: { bus: number; address: number } };
      if (name === 'session.state' && e.state === 'up' && e.device) stamp('mqtt', e.device);
    } catch (err) {
      // The queue refuses only when it is unusable (closed, state dir gone): the event is lost, say why.
      ctx.log.error({ err, event: name }, 'could not queue event');
    }
  });
}

export const events = (): Feature => ({
  name: 'events',
  start(ctx) {
    for (const name of AGENT_EVENT_NAMES) deliver(ctx, name);
  },
});
