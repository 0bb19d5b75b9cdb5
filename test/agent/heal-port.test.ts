/**
 * The `reset` request on the recovery ladder (issues 15 + 18): the ladder accepts at once and tells its
 * outcome in `heal.step` events; the port answers with the step that ended the climb.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Bus } from '../../src/agent/bus.js';
import { healPort } from '../../src/agent/features/heal-port.js';
import type { FeatureContext } from '../../src/agent/features.js';
import type { HealStepEvent } from '../../src/heal/events.js';
import type { HealService } from '../../src/heal/runner.js';
import { FakeClock } from '../fakes/clock.js';

const KEY = '1209:0001';

function setup(reply: ReturnType<HealService['request']> = { accepted: true }) {
  const clock = new FakeClock();
  const bus = new Bus(pino({ level: 'silent' }));
  const asked: (string | undefined)[] = [];
  const service = {
    request: (target: string, step?: string) => {
      asked.push(`${target} ${step ?? 'ladder'}`);
      return reply;
    },
    counts: () => undefined,
    totals: () => ({}),
  } as unknown as HealService;
  const ctx = {
    clock,
    config: { heal: { stepWaitMs: 1000 } },
    on: (event: 'heal.step', fn: (e: HealStepEvent) => void) => bus.on('commands', event, fn),
  } as unknown as FeatureContext;
  const step = (e: Partial<HealStepEvent>) =>
    bus.emit('heal.step', { target: KEY, step: 'reset', outcome: 'down', trigger: 'request', ms: 5, ...e });
  return { clock, asked, port: healPort(ctx, () => service), step };
}

describe('healPort', () => {
  it('answers with the step after which the target came back, not with the acceptance', async () => {
    const { port, step, asked, clock } = setup();
    let settled = false;
    const run = port.run(KEY).then((r) => {
      settled = true;
      return r;
    });
    expect(asked).toEqual([`${KEY} ladder`]);
    step({ step: 'reset', outcome: 'down', next: 'reauthorize' }); // climbing on
    step({ step: 'reset', outcome: 'up', trigger: 'attempts' }); // another climb's record: not ours
    step({ target: '1209:0002', step: 'reset', outcome: 'up' }); // another target
    await Promise.resolve();
    expect(settled).toBe(false);
    await clock.advance(700);
    step({ step: 'reauthorize', outcome: 'up' });
    expect(await run).toEqual({ step: 'reauthorize', outcome: 'ok', ms: 700 });
  });

  it('a climb that ran out of steps is a failure with the last step', async () => {
    const { port, step } = setup();
    const run = port.run(KEY, 'rebind');
    step({ step: 'rebind', outcome: 'down', next: 'rest' });
    expect(await run).toMatchObject({ step: 'rebind', outcome: 'down' });
  });

  it("a refusal by the ladder is REPLUG_RESET_REFUSED with the ladder's reason", async () => {
    const { port } = setup({
      accepted: false,
      error: { code: 'REPLUG_HEAL_RATE_LIMITED', message: '3 climbs in the last hour' },
    });
    await expect(port.run(KEY)).rejects.toMatchObject({
      code: 'REPLUG_RESET_REFUSED',
      message: `${KEY}: 3 climbs in the last hour`,
    });
  });

  it('gives up after the whole ladder could have run, saying timeout', async () => {
    const { port, clock } = setup();
    const run = port.run(KEY);
    await clock.advance(6 * 5 * 1000 + 10);
    expect(await run).toMatchObject({ step: 'ladder', outcome: 'timeout' });
  });
});
