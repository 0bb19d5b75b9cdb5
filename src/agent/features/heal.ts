/**
 * Feature `heal` (--heal STEPS): the recovery ladder (src/heal) for every target. Session events feed it,
 * a one-second tick runs its clocks, its steps act through src/heal/steps, and each step becomes a
 * `heal.step` event; the counts go into target/<key>/state and health (targets.ts, health.ts read
 * `ctx.services.heal`). At start it checks which of the chosen steps can work here and says, once per
 * step, why not and the fix (the same check as `replug doctor`'s heal section).
 */

import { healCapabilities } from '../../heal/permissions.js';
import { HealRunner } from '../../heal/runner.js';
import { portPowerStep } from '../../heal/steps/port-power.js';
import { reauthorizeStep } from '../../heal/steps/reauthorize.js';
import { rebindStep } from '../../heal/steps/rebind.js';
import { resetStep } from '../../heal/steps/reset.js';
import type { HealStep } from '../../heal/steps/types.js';
import type { DeviceStep } from '../../heal/types.js';
import { createUsbReset } from '../../usb/reset.js';
import type { Feature, FeatureContext } from '../features.js';

const TICK_MS = 1000;

function steps(ctx: FeatureContext): Map<DeviceStep, HealStep> {
  const { sysfsRoot } = ctx.config;
  const { clock } = ctx;
  const all: HealStep[] = [
    resetStep({ sysfsRoot, reset: createUsbReset() }),
    reauthorizeStep({ sysfsRoot, clock }),
    portPowerStep({ sysfsRoot, clock, shared: ctx.config.heal.portShared }),
    rebindStep({ sysfsRoot, clock }),
  ];
  return new Map(all.filter((s) => ctx.config.heal.steps.includes(s.name)).map((s) => [s.name, s]));
}

async function checkPermissions(ctx: FeatureContext): Promise<void> {
  const roots = { sys: ctx.config.sysfsRoot, dev: ctx.config.devfsRoot };
  for (const c of await healCapabilities(roots, ctx.config.heal.steps))
    if (!c.ok)
      ctx.log.warn(
        { step: c.step, reason: c.reason, fix: c.fix },
        `heal step ${c.step} cannot work here: ${c.reason} (${c.fix}); the ladder reports it and moves on`,
      );
}

export const heal = (): Feature => ({
  name: 'heal',
  enabled: (config) => config.heal.steps.length > 0 && config.targets.length > 0,
  async start(ctx) {
    await checkPermissions(ctx);
    const runner = new HealRunner({
      ladder: ctx.config.heal,
      targets: ctx.config.targets,
      steps: steps(ctx),
      clock: ctx.clock,
      log: ctx.log,
      deviceOf: (key) => ctx.sessions.get(key)?.device,
      emit: (event) => ctx.bus.emit('heal.step', event),
      // Only a session waiting out its backoff: one that is opening is already trying the healed device.
      retry: (key) => {
        if (ctx.sessions.get(key)?.state === 'backoff') ctx.sessions.restart(key);
      },
    });
    ctx.services.heal = runner;
    ctx.on('session.state', (e) => runner.sessionState(e));
    ctx.on('reconnect.failed', (e) => runner.reconnectFailed(e.target, e.error.code));
    ctx.every(TICK_MS, 'the heal ladder', () => runner.tick());
    ctx.onStop(async () => {
      delete ctx.services.heal;
      await runner.stop();
    });
  },
});
