/**
 * The `reset` request (issue 18) on the recovery ladder (issue 15). The ladder answers a request at once
 * (accepted or refused) and tells its outcome later, one `heal.step` event per step; a response must carry
 * the outcome, so this waits for the step that ends the climb: the target came back (`up`), the step
 * failed for good (`error`, `refused`), or nothing is left to try (`next` absent or `rest`).
 */
import { ActionError, RequestCodes } from '../../control/codes.js';
import type { HealService as ControlHeal, HealRunResult } from '../../control/ports.js';
import type { HealStepEvent } from '../../heal/events.js';
import type { HealService } from '../../heal/runner.js';
import { LADDER, type StepName } from '../../heal/types.js';
import type { FeatureContext } from '../features.js';

interface Waiter {
  target: string;
  startedAt: number;
  settle(result: HealRunResult): void;
}

/** Whether a step record is the last of its climb. */
function ends(e: HealStepEvent): boolean {
  return (
    e.outcome === 'up' || e.outcome === 'error' || e.outcome === 'refused' || !e.next || e.next === 'rest'
  );
}

export function healPort(ctx: FeatureContext, service: () => HealService | undefined): ControlHeal {
  const waiters = new Set<Waiter>();
  ctx.on('heal.step', (e) => {
    if (e.trigger !== 'request' || !ends(e)) return;
    for (const w of waiters)
      if (w.target === e.target) {
        waiters.delete(w);
        w.settle({
          step: e.step,
          outcome: e.outcome === 'up' ? 'ok' : e.outcome,
          ms: ctx.clock.monotonic() - w.startedAt,
        });
      }
  });
  // Every step may wait for the session this long; the whole ladder, with a margin, bounds the wait.
  const boundMs = () => (ctx.config.heal.stepWaitMs + 5000) * LADDER.length;
  return {
    run(key, step) {
      const heal = service();
      if (!heal)
        throw new ActionError(RequestCodes.HEAL_UNAVAILABLE, 'this agent runs no recovery ladder (heal)');
      return new Promise<HealRunResult>((resolve) => {
        const timer = ctx.clock.setTimeout(() => {
          waiters.delete(waiter);
          resolve({
            step: step ?? 'ladder',
            outcome: 'timeout',
            ms: ctx.clock.monotonic() - waiter.startedAt,
          });
        }, boundMs());
        const waiter: Waiter = {
          target: key,
          startedAt: ctx.clock.monotonic(),
          settle: (r) => {
            ctx.clock.clearTimeout(timer);
            resolve(r);
          },
        };
        waiters.add(waiter);
        const reply = heal.request(key, step as StepName | undefined);
        if (!reply.accepted) {
          waiters.delete(waiter);
          ctx.clock.clearTimeout(timer);
          throw new ActionError(
            RequestCodes.RESET_REFUSED,
            `${key}: ${reply.error?.message ?? 'the recovery ladder refused'}`,
            { target: key, ...(reply.error ? { heal: reply.error } : {}) },
          );
        }
      });
    },
  };
}
