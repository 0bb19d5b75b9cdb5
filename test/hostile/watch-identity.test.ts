/**
 * Issue 10, "What observers are told": `replug watch` could be blinded. One schema-valid event with seq
 * 2^53-1 made it reject all 280 later real events of that agent as duplicates; an agent whose state dir
 * was wiped (boot counter back to 1) had everything rejected (106 stale, 144 duplicate). Replayed on the
 * pure reducer, then through a real broker and the CLI.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { agentId, emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import type { FleetMessage, FleetState } from '../../src/fleet/types.js';
import { lines, watch } from '../fleet/cli.js';
import { buildHealth, buildStatus, eventFor, health, infoFor, msg, T0, targetFor } from '../fleet/sim.js';

const A = 'mqtt://a:1883';
const ev = (seq: number, session: number) =>
  eventFor('source.status', { source: 'devfs', status: { state: 'active' } }, seq, session);
const live = (topic: string, payload: unknown) => msg(topic, payload, { retained: false });
const hp = (session: number) =>
  buildHealth(
    health,
    { depth: 0, dropped: 0, capacity: 10 },
    { connected: true, reconnects: 0 },
    session,
    T0,
  );

function run(messages: FleetMessage[], state: FleetState = emptyFleet()) {
  const outcomes: string[] = [];
  for (const m of messages) {
    const r = reduce(state, m);
    state = r.state;
    outcomes.push(r.outcome.ok ? 'accepted' : r.outcome.reason);
  }
  return { state, outcomes };
}

function tally(list: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const x of list) t[x] = (t[x] ?? 0) + 1;
  return t;
}

describe('event identity in watch (issue 10)', () => {
  let broker: RunningBroker | undefined;
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
  });

  it('one event with seq 2^53-1 does not blind watch to the 280 real ones after it: the schema refuses it', () => {
    // docs/schemas/event.schema.json caps seq at 2^48 (the queue's durable mark never gets near it).
    const { state, outcomes } = run([
      live('replug/pi/status', buildStatus('online', 1, T0)),
      live('replug/pi/event', ev(2 ** 53 - 1, 1)),
      ...Array.from({ length: 280 }, (_, i) => live('replug/pi/event', ev(i + 1, 1))),
    ]);
    expect(outcomes[1]).toBe('schema');
    expect(tally(outcomes.slice(2))).toEqual({ accepted: 280 });
    expect(state.agents.get(agentId(A, 'pi'))?.lastEvent?.seq).toBe(280);
  });

  it('a schema-valid seq far ahead (2^47) does not blind watch either: it is counted as a jump, not trusted', () => {
    const { state, outcomes } = run([
      live('replug/pi/status', buildStatus('online', 1, T0)),
      live('replug/pi/event', ev(2 ** 47, 1)),
      ...Array.from({ length: 280 }, (_, i) => live('replug/pi/event', ev(i + 1, 1))),
    ]);
    expect(tally(outcomes.slice(2))).toEqual({ accepted: 280 });
    expect(state.agents.get(agentId(A, 'pi'))?.lastEvent?.seq).toBe(280);
    // The first real event showed the one before it for what it was: a jump.
    expect(state.counters.seqJumps).toBe(1);
    // Real redelivery is still caught, and a jump far ahead of the stream is counted, not followed.
    const again = run([live('replug/pi/event', ev(280, 1)), live('replug/pi/event', ev(2 ** 40, 1))], state);
    expect(again.outcomes).toEqual(['duplicate', 'accepted']);
    expect(again.state.counters.seqJumps).toBe(2);
  });

  it('a wiped state dir (boot counter back to 1) is followed as a reset, not rejected', () => {
    const before = [
      live('replug/pi/status', buildStatus('online', 5, T0)),
      live('replug/pi/info', infoFor('pi', 5)),
      live('replug/pi/health', hp(5)),
      live('replug/pi/target/1209-0001-abc123/state', targetFor(5)),
      ...Array.from({ length: 100 }, (_, i) => live('replug/pi/event', ev(i + 1, 5))),
    ];
    const after = [
      live('replug/pi/status', buildStatus('online', 1, T0)),
      live('replug/pi/info', infoFor('pi', 1)),
      live('replug/pi/health', hp(1)),
      live('replug/pi/target/1209-0001-abc123/state', targetFor(1)),
      ...Array.from({ length: 150 }, (_, i) => live('replug/pi/event', ev(i + 1, 1))),
    ];
    const { state, outcomes } = run([...before, ...after]);
    expect(tally(outcomes.slice(before.length))).toEqual({ accepted: after.length });
    const pi = state.agents.get(agentId(A, 'pi'));
    expect(pi).toMatchObject({ session: 1, resets: 1, status: { state: 'online', session: 1 } });
    expect(pi?.info?.session).toBe(1);
    expect(state.counters.resets).toBe(1);
  });

  it('a fresh watch after a wipe: leftovers of the old boot are stale, the new boot is shown', () => {
    // The retained census in either order: the wiped agent's status and info, a target state it left.
    for (const order of [0, 1]) {
      const census = [
        msg('replug/pi/status', buildStatus('online', 1, T0)),
        msg('replug/pi/info', infoFor('pi', 1)),
        msg('replug/pi/target/1209-0001-abc123/state', targetFor(7)),
      ];
      if (order === 1) census.reverse();
      const { state } = run([...census, live('replug/pi/event', ev(1, 1)), live('replug/pi/health', hp(1))]);
      const pi = state.agents.get(agentId(A, 'pi'));
      expect(pi?.session, `order ${order}`).toBe(1);
      expect(Object.keys(pi?.targets ?? {}), `order ${order}`).toEqual([]);
      expect(pi?.health?.session).toBe(1);
      expect(pi?.lastEvent?.seq).toBe(1);
    }
  });

  it('through a broker and the CLI: every message after the wipe is accepted', async () => {
    broker = await startBroker({ port: 0 });
    const run = watch(['--json', '--mqtt', broker.url]);
    await new Promise((r) => setTimeout(r, 500));
    const pub = await mqtt.connectAsync(broker.url);
    const send = async (topic: string, payload: unknown, retain = false) =>
      pub.publishAsync(topic, JSON.stringify(payload), { qos: 1, retain });
    await send('replug/pi/status', buildStatus('online', 5, T0), true);
    await send('replug/pi/health', hp(5), true);
    for (let i = 1; i <= 100; i++) await send('replug/pi/event', ev(i, 5));
    await send('replug/pi/status', buildStatus('online', 1, T0), true);
    await send('replug/pi/health', hp(1), true);
    for (let i = 1; i <= 150; i++) await send('replug/pi/event', ev(i, 1));
    await pub.endAsync();
    await run.until(() => lines(run.stdout.text).length >= 254, 'every line');
    await run.stop();
    const after = lines(run.stdout.text).slice(102);
    expect(tally(after.map((l) => (l.kind === 'rejected' ? String(l.reason) : 'accepted')))).toEqual({
      accepted: 152,
    });
  });
});
