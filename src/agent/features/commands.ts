/**
 * Feature `commands` (issue 18): answers requests on `replug/<id>/request/<action>` and
 * `replug/_fleet/request/<action>` on `replug/<id>/response/<action>` (src/control: the contract and the
 * responder). On with --commands, or when the embedded broker has a users file (then only its `operator`
 * users may publish requests). Who may ask is the broker's decision: the agent cannot see who published a
 * request, so on a broker without ACLs anyone can; it says so at start.
 */

import type { AgentConfig } from '../../config/agent.js';
import { controlTopics } from '../../control/contract.js';
import { doctorReport } from '../../control/doctor.js';
import type { ControlPorts } from '../../control/ports.js';
import { Responder } from '../../control/responder.js';
import { buildDiscovery } from '../../mqtt/homeassistant.js';
import { encodePayload } from '../../mqtt/payloads.js';
import { targetKey, targetTopicKey } from '../../usb/ids.js';
import type { Feature, FeatureContext } from '../features.js';
import { healPort } from './heal-port.js';

/** How long `restart` and `forget` wait for what they started before answering with what they saw. */
const SETTLE_BOUND_MS = 10_000;
const HA_PREFIX = 'homeassistant';
const HA_SUFFIXES = ['up', 'state', 'reconnects', 'p95'];

export function commandsEnabled(config: AgentConfig): boolean {
  return config.commands.given || (config.mqtt.url === undefined && config.broker.users !== undefined);
}

let waits = 0;

/**
 * Resolves with the target's state once a change says `done`, or at the bound. Its bus listener has an
 * owner of its own, removed when it resolves (a feature's own listeners live until the feature stops).
 */
function whenSettled(ctx: FeatureContext, key: string, done: (state: string) => boolean): Promise<string> {
  const owner = `commands:wait:${++waits}`;
  return new Promise((resolve) => {
    const finish = () => {
      ctx.bus.off(owner);
      ctx.clock.clearTimeout(timer);
      resolve(ctx.sessions.get(key)?.state ?? 'unknown');
    };
    const timer = ctx.clock.setTimeout(finish, SETTLE_BOUND_MS);
    ctx.bus.on(owner, 'target.changed', (state) => {
      if (state.target === key && done(state.state)) finish();
    });
  });
}

function within<T>(ctx: FeatureContext, p: Promise<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = ctx.clock.setTimeout(
      () => reject(new Error(`${what}: no acknowledgement from the broker within ${SETTLE_BOUND_MS} ms`)),
      SETTLE_BOUND_MS,
    );
    p.then(
      (v) => {
        ctx.clock.clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        ctx.clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The target's Home Assistant components in HA's removal form, and the record without them. */
async function forgetHomeAssistant(ctx: FeatureContext, topicKey: string): Promise<string[]> {
  const announced = ctx.announced.get().homeassistant;
  const base = `replug-${ctx.identity.agent}-${topicKey}-`;
  const ids = Object.keys(announced?.components ?? {}).filter(
    (id) => id.startsWith(base) && HA_SUFFIXES.includes(id.slice(base.length)),
  );
  if (!announced || ids.length === 0 || !ctx.config.homeassistant) return [];
  const removed = Object.fromEntries(ids.map((id) => [id, announced.components[id] as string]));
  const targets = ctx.config.targets.map((t) => ({ ...t, target: targetKey(t) }));
  const m = buildDiscovery({ prefix: announced.prefix }, { agent: ctx.identity.agent }, targets, removed);
  await within(
    ctx,
    ctx.publisher.client.publish(m.topic, encodePayload(m.payload), { retain: false }),
    'forget',
  );
  await ctx.announced.update((a) => {
    const components = { ...(a.homeassistant?.components ?? {}) };
    for (const id of ids) delete components[id];
    return { ...a, homeassistant: { prefix: a.homeassistant?.prefix ?? HA_PREFIX, components } };
  });
  return ids.map((id) => `${announced.prefix}:${id}`);
}

function ports(ctx: FeatureContext): ControlPorts {
  const { watcher, sessions, publisher } = ctx;
  // The heal feature registers its ladder when --heal is on; read it at each request, since features
  // start in list order.
  const heal = healPort(ctx, () => ctx.services.heal);
  return {
    targets: () => ctx.config.targets.map((t) => ({ key: targetKey(t), topicKey: targetTopicKey(t) })),
    republish: () => {
      publisher.retained.republish();
      return publisher.retained.topics().length;
    },
    rescan: async () => ({ sources: await watcher.rescan(), devices: watcher.current().length }),
    restart: async (key) => {
      const settled = whenSettled(ctx, key, (s) => s === 'up' || s === 'backoff' || s === 'waiting');
      if (!sessions.restart(key)) return { restarted: false, state: sessions.get(key)?.state ?? 'unknown' };
      return { restarted: true, state: await settled };
    },
    doctor: () => doctorReport(ctx.doctorInput.roots, ctx.doctorInput.env),
    list: () => {
      const devices = watcher.current();
      return { devices, count: devices.length };
    },
    presentDeviceKeys: () => watcher.current().map((d) => d.key),
    forgetTarget: async (topicKey) => {
      await within(ctx, publisher.clearTargetState(topicKey), 'forget');
      await ctx.announced.update((a) => ({ ...a, targets: a.targets.filter((k) => k !== topicKey) }));
      const ha = await forgetHomeAssistant(ctx, topicKey);
      return { cleared: [publisher.topics.target(topicKey), ...ha] };
    },
    get heal() {
      return ctx.services.heal ? heal : undefined;
    },
  };
}

/** One line at start: what is listened to, and who can ask (or that anyone can). */
function sayWhoMayAsk(ctx: FeatureContext): void {
  const { config } = ctx;
  const where = controlTopics.agentFilters(ctx.identity.agent).join(' and ');
  if (ctx.broker.embedded && config.broker.users === undefined)
    ctx.log.warn(
      `commands are enabled on an open broker: any client that can reach it may ask this agent to act (${where}); give the embedded broker --broker-users with operator users`,
    );
  else if (!ctx.broker.embedded && config.mqtt.username === undefined)
    ctx.log.warn(
      `commands are enabled and the agent connects without a user name: unless the broker's ACL lets only operators publish ${where}, anyone connected may ask this agent to act`,
    );
  else ctx.log.info(`commands enabled: answering ${where}; the broker's ACL decides who may ask`);
}

export const commands = (): Feature => ({
  name: 'commands',
  enabled: commandsEnabled,
  start(ctx) {
    sayWhoMayAsk(ctx);
    const responder = new Responder({
      agent: ctx.identity.agent,
      ports: ports(ctx),
      clock: ctx.clock,
      maxAgeMs: ctx.config.commands.maxAgeMs,
      onRefused: ({ action, code, message }) =>
        ctx.log.info({ action, code }, `request ${action}: ${message}`),
    });
    const { client } = ctx.publisher;
    const filters = controlTopics.agentFilters(ctx.identity.agent);
    const off = client.on('message', (topic, payload, meta) => {
      void responder
        .handle({ topic, payload, ...meta })
        .then((outcome) => {
          if (outcome.kind === 'replayed')
            ctx.log.info(
              { action: outcome.action },
              `request ${outcome.action}: transaction already handled, not answered again`,
            );
          if (outcome.kind !== 'answered') return;
          for (const p of outcome.publishes)
            client
              .publish(p.topic, p.payload, {
                retain: false,
                ...(p.correlationData ? { correlationData: p.correlationData } : {}),
              })
              .catch((err: unknown) => ctx.log.warn({ err, topic: p.topic }, 'a response was not delivered'));
        })
        .catch((err: unknown) => ctx.log.error({ err }, 'a request could not be handled'));
    });
    for (const f of filters) client.subscribe(f);
    ctx.onStop(() => {
      off();
      for (const f of filters) client.unsubscribe(f);
    });
  },
});
