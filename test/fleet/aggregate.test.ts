/** The pure fleet reducer: late wills, facets, stale boots, de-duplication, rejection reasons, isolation. */
import { describe, expect, it } from 'vitest';
import { agentId, emptyFleet, MAX_WARNINGS, reduce } from '../../src/fleet/aggregate.js';
import type { FleetMessage, FleetState } from '../../src/fleet/types.js';
import {
  buildDevices,
  buildStatus,
  CONTAINER,
  device,
  eventFor,
  infoFor,
  msg,
  T0,
  targetFor,
} from './sim.js';

function run(messages: FleetMessage[], state: FleetState = emptyFleet()) {
  for (const m of messages) state = reduce(state, m).state;
  return state;
}

const A = 'mqtt://a:1883';
const B = 'mqtt://b:1883';

describe('reduce: status and the boot counter', () => {
  it('ignores an offline will from an older session than the last online, and counts it', () => {
    let s = emptyFleet();
    s = reduce(s, msg('replug/pi/status', buildStatus('online', 7, T0))).state;
    const late = reduce(s, msg('replug/pi/status', buildStatus('offline', 6, T0 + 5)));
    const pi = late.state.agents.get(agentId(A, 'pi'));
    expect(late.lateWill).toBe(true);
    expect(pi?.status).toMatchObject({ state: 'online', session: 7 });
    expect(pi?.staleWills).toBe(1);
    // The will of the current boot is real.
    const real = reduce(late.state, msg('replug/pi/status', buildStatus('offline', 7, T0 + 9)));
    expect(real.lateWill).toBe(false);
    expect(real.state.agents.get(agentId(A, 'pi'))?.status?.state).toBe('offline');
  });

  it('a newer boot drops the previous boot’s retained targets; older facets are stale', () => {
    const s = run([
      msg('replug/pi/target/1209-0001-abc123/state', targetFor(3)),
      msg('replug/pi/status', buildStatus('online', 4, T0)),
      msg('replug/pi/info', infoFor('pi', 3)),
    ]);
    const pi = s.agents.get(agentId(A, 'pi'));
    expect(Object.keys(pi?.targets ?? {})).toEqual([]);
    expect(pi?.info).toBeUndefined();
    expect(s.counters.rejected.stale).toBe(1);
  });

  it('an empty retained payload clears that facet; nothing left removes the agent', () => {
    const s = run([
      msg('replug/pi/status', buildStatus('online', 1, T0)),
      msg('replug/pi/devices', buildDevices([device], 1, T0)),
      msg('replug/pi/devices', ''),
    ]);
    expect(s.agents.get(agentId(A, 'pi'))?.devices).toBeUndefined();
    expect(s.counters.cleared).toBe(1);
    run([msg('replug/pi/status', '')], s);
    expect(s.agents.size).toBe(0);
  });
});

describe('reduce: events', () => {
  it('de-duplicates QoS 1 redelivery by seq, folds detection and reconnect durations', () => {
    const ok = eventFor(
      'reconnect.succeeded',
      { target: '1209:0001', attempts: 1, device, durationMs: 40 },
      5,
      2,
    );
    const det = eventFor(
      'device.detection',
      {
        kind: 'added',
        key: device.key,
        vid: '1209',
        pid: '0001',
        bus: 1,
        address: 4,
        first: 'devfs',
        latencyMs: { devfs: 0, sysfs: 300 },
        missedBy: ['nusb'],
      },
      6,
      2,
    );
    const s = run([msg('replug/pi/event', ok), msg('replug/pi/event', ok), msg('replug/pi/event', det)]);
    const pi = s.agents.get(agentId(A, 'pi'));
    expect(s.counters.rejected.duplicate).toBe(1);
    expect(pi?.reconnectDurations['1209:0001']).toEqual([40]);
    expect(pi?.detection).toEqual({
      devfs: { seen: 1, first: 1, missed: 0, meanLatencyMs: 0, maxLatencyMs: 0 },
      sysfs: { seen: 1, first: 0, missed: 0, meanLatencyMs: 300, maxLatencyMs: 300 },
      nusb: { seen: 0, first: 0, missed: 1, meanLatencyMs: null, maxLatencyMs: null },
    });
    expect(pi?.lastEvent).toMatchObject({
      type: 'device.detection',
      seq: 6,
      summary: 'added 1209:0001 first by devfs',
    });
  });

  it('a wiped state dir (seq back to 1 under a newer session) is not a duplicate', () => {
    const e = (seq: number, session: number) =>
      eventFor('source.status', { source: 'devfs', status: { state: 'active' } }, seq, session);
    const s = run([msg('replug/pi/event', e(50, 1)), msg('replug/pi/event', e(1, 2))]);
    expect(s.counters.accepted).toBe(2);
  });

  it('counts event types this build does not know without warning about them', () => {
    const s = run([msg('replug/pi/event', { type: 'future.thing', seq: 1, session: 1, ts: T0 })]);
    expect(s.counters.rejected['unknown-event']).toBe(1);
    expect(s.warnings).toEqual([]);
  });
});

describe('reduce: hostile input', () => {
  it('rejects per reason, keeps warnings bounded and sanitised, and never touches another agent', () => {
    let s = run([
      msg('replug/good/status', buildStatus('online', 3, T0)),
      msg('replug/good/info', infoFor('good', 3, CONTAINER)),
    ]);
    const before = s.agents.get(agentId(A, 'good'));
    const bad: [string, unknown, string][] = [
      ['replug/good/status', '{"state":', 'not-json'],
      ['replug/good/status', Buffer.from([0xff, 0xfe, 0x7b]), 'not-json'],
      ['replug/good/status', { state: 'online', session: '3', ts: T0 }, 'schema'],
      [
        'replug/good/status',
        JSON.parse('{"state":"online","session":3,"ts":1,"__proto__":{"x":1}}'),
        'schema',
      ],
      ['replug/good/info', infoFor('evil', 9), 'agent-mismatch'],
      ['replug/good/target/1209-0001/state', targetFor(3), 'target-mismatch'],
      ['replug/Good/status', buildStatus('online', 1, T0), 'bad-topic'],
      ['replug/good/status/\u001b[2J', buildStatus('online', 1, T0), 'bad-topic'],
      ['replug/good/health', `"${'x'.repeat(300 * 1024)}"`, 'oversized'],
      ['replug/good/devices', '['.repeat(100_000) + ']'.repeat(100_000), 'schema'],
      ['replug/good/devices', [1, 2], 'schema'],
    ];
    for (const [topic, payload, reason] of bad) {
      const r = reduce(s, msg(topic, payload));
      s = r.state;
      expect(r.outcome.ok ? 'accepted' : r.outcome.reason, topic).toBe(reason);
    }
    expect(s.agents.get(agentId(A, 'good'))).toBe(before);
    expect(s.agents.size).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(s.counters.received).toBe(2 + bad.length);
    expect(s.warnings.map((w) => w.reason)).toEqual(bad.map(([, , r]) => r));
    const control = [...s.warnings.map((w) => w.topic + w.detail).join('')].filter(
      (c) => c.charCodeAt(0) < 0x20,
    );
    expect(control).toEqual([]);
    for (let i = 0; i < MAX_WARNINGS + 5; i++) s = reduce(s, msg('replug/x/status', 'nope')).state;
    expect(s.warnings).toHaveLength(MAX_WARNINGS);
  });

  it('keeps the same agent id on two brokers apart', () => {
    const s = run([
      msg('replug/raspberrypi/status', buildStatus('online', 2, T0), { broker: A }),
      msg('replug/raspberrypi/status', buildStatus('offline', 9, T0), { broker: B }),
    ]);
    expect(s.agents.get(agentId(A, 'raspberrypi'))?.status?.state).toBe('online');
    expect(s.agents.get(agentId(B, 'raspberrypi'))?.status?.state).toBe('offline');
  });
});

describe('reduce: a late will already retained', () => {
  it('an offline of an older boot followed by the newer boot’s info leaves the status unknown, not offline', () => {
    const s = run([
      msg('replug/pi/status', buildStatus('offline', 1, T0)),
      msg('replug/pi/info', infoFor('pi', 2)),
    ]);
    const pi = s.agents.get(agentId(A, 'pi'));
    expect(pi?.status).toBeUndefined();
    expect(pi?.staleWills).toBe(1);
    expect(pi?.info?.session).toBe(2);
  });
});
