/**
 * Feature `homeassistant` (--homeassistant): Home Assistant device discovery for this agent and its
 * targets (src/mqtt/discovery.ts). Components an earlier run announced and this one no longer has are sent
 * in HA's removal form, `{"p": "<platform>"}`, until a config carrying them was acknowledged after HA's
 * birth message was seen (issue 10; what-users-ask.md). Turned off after an earlier run announced the
 * device: the device itself is removed (an empty config), once.
 */
import { noCounts } from '../../heal/counts.js';
import { discoveryComponents, discoveryTopic, type HomeAssistantOptions } from '../../mqtt/homeassistant.js';
import { targetKey } from '../../usb/ids.js';
import type { Feature, FeatureContext } from '../features.js';

const OPTIONS: HomeAssistantOptions = { prefix: 'homeassistant' };
const PREFIX = OPTIONS.prefix as string;

function announce(ctx: FeatureContext): void {
  // --heal on: each target also gets its heal-count entity (issue 15), as the published states carry heal.
  const heal = ctx.config.heal.steps.length > 0 ? { heal: noCounts() } : {};
  const targets = ctx.config.targets.map((t) => ({ ...t, target: targetKey(t), ...heal }));
  const current = discoveryComponents(ctx.identity.agent, targets);
  const before = ctx.announced.get().homeassistant;
  const removed: Record<string, string> = {};
  for (const [id, platform] of Object.entries(before?.prefix === PREFIX ? before.components : {}))
    if (!(id in current)) removed[id] = platform;
  const record = () =>
    ctx.announced.update((a) => ({
      ...a,
      homeassistant: { prefix: PREFIX, components: { ...current, ...removed } },
    }));
  void record();
  // The configured targets, not the states published so far: a config sent on the first connect, before
  // the sessions started, must already name them.
  const discovery = ctx.publisher.startDiscovery(
    OPTIONS,
    () => ({ ...removed }),
    () => targets,
  );
  discovery.onConfirmed((sent) => {
    if (Object.keys(sent).length === 0) return;
    for (const id of Object.keys(sent)) delete removed[id];
    ctx.log.info(
      { components: Object.keys(sent) },
      'Home Assistant was told to remove components this agent no longer has',
    );
    void record();
  });
}

/** --homeassistant off now, on in an earlier run: remove the device from HA (an empty config). */
function forget(ctx: FeatureContext): void {
  const before = ctx.announced.get().homeassistant;
  if (!before) return;
  const { client } = ctx.publisher;
  const topic = discoveryTopic({ prefix: before.prefix }, ctx.identity.agent);
  const send = () => {
    if (!client.isUp) return;
    client.publish(topic, '', { retain: false }).then(
      () => {
        off();
        ctx.log.info('Home Assistant discovery is off: removed this agent from Home Assistant');
        return ctx.announced.update(({ homeassistant: _ha, ...rest }) => rest);
      },
      () => undefined,
    );
  };
  const off = client.on('up', send);
  ctx.onStop(off);
  send();
}

export const homeassistant = (): Feature => ({
  name: 'homeassistant',
  start(ctx) {
    if (ctx.config.homeassistant) announce(ctx);
    else forget(ctx);
  },
});
