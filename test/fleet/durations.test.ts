/**
 * Reconnect durations are appended in place (issue 17: copying the list per event was most of watch's
 * cost per event): the bound and the order must hold as they did with copies.
 */
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { MAX_DURATIONS } from '../../src/fleet/events.js';

const device = { key: 'serial:B1', vid: '1209', pid: '0001', serial: 'B1', bus: 1, address: 4 };
const msg = (seq: number, durationMs: number, target = '1209:0001:B1') => ({
  broker: 'mqtt://127.0.0.1:1883',
  topic: 'replug/pi-1/event',
  payload: Buffer.from(
    JSON.stringify({
      type: 'reconnect.succeeded',
      target,
      attempts: 1,
      device,
      durationMs,
      seq,
      session: 1,
      ts: 1,
    }),
  ),
  retained: false,
  receivedAt: 1,
});

describe('fleet store: reconnect durations', () => {
  it('keeps the last MAX_DURATIONS per target, oldest first, and targets apart', () => {
    let state = emptyFleet();
    for (let seq = 1; seq <= MAX_DURATIONS + 5; seq++) state = reduce(state, msg(seq, seq)).state;
    state = reduce(state, msg(MAX_DURATIONS + 6, 7, '1209:0002')).state;
    const agent = [...state.agents.values()][0];
    const list = agent?.reconnectDurations['1209:0001:B1'] ?? [];
    expect(list).toHaveLength(MAX_DURATIONS);
    expect(list[0]).toBe(6);
    expect(list.at(-1)).toBe(MAX_DURATIONS + 5);
    expect(agent?.reconnectDurations['1209:0002']).toEqual([7]);
    expect(state.counters.accepted).toBe(MAX_DURATIONS + 6);
  });
});
