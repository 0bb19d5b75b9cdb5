/**
 * Feature `targets`: the retained `target/<key>/state` of every configured target, from the session
 * manager's `target.changed`. At start it also clears the retained state of targets an earlier run
 * announced and this configuration no longer has (issue 10), remembering what is left to clear in the
 * state dir (announced.ts) until the broker acknowledged each removal.
 */
import type { TargetState } from '../../session/target-state.js';
import { targetTopicKey } from '../../usb/ids.js';
import type { Feature, FeatureContext } from '../features.js';

async function clearRemoved(ctx: FeatureContext, current: string[]): Promise<void> {
  const before = ctx.announced.get().targets;
  const removed = before.filter((k) => !current.includes(k));
  await ctx.announced.update((a) => ({ ...a, targets: [...current, ...removed] }));
  for (const key of removed) {
    ctx.log.info({ target: key }, `target ${key} is no longer configured: clearing its retained state`);
    void ctx.publisher
      .clearTargetState(key)
      .then(() => ctx.announced.update((a) => ({ ...a, targets: a.targets.filter((k) => k !== key) })))
      .then(() => ctx.log.info({ target: key }, `target ${key}: the broker acknowledged the cleared state`));
  }
}

/** The session's state with the heal counts when --heal is on (issue 15). */
function withHeal(ctx: FeatureContext, state: TargetState): TargetState {
  const counts = ctx.services.heal?.counts(state.target);
  return counts ? { ...state, heal: counts } : state;
}

export const targetStates = (): Feature => ({
  name: 'targets',
  start(ctx) {
    ctx.on('target.changed', (state) => ctx.publisher.setTargetState(withHeal(ctx, state)));
    // A heal step changes the counts without a session event.
    ctx.on('heal.step', ({ target }) => {
      const state = ctx.sessions.get(target);
      if (state) ctx.publisher.setTargetState(withHeal(ctx, state));
    });
    ctx.on('agent.ready', () => {
      const states = ctx.sessions.snapshot();
      for (const state of states) ctx.publisher.setTargetState(withHeal(ctx, state));
      void clearRemoved(ctx, states.map(targetTopicKey));
    });
  },
});
