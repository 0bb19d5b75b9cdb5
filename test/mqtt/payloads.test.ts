import { describe, expect, it } from 'vitest';
import {
  buildDevices,
  buildEvent,
  buildHealth,
  buildInfo,
  buildStatus,
  buildTargetState,
  type EventDraft,
  encodePayload,
  eventDraft,
  percentile,
  reconnectStats,
} from '../../src/mqtt/payloads.js';
import { PAYLOAD_KINDS, type PayloadKind, validatePayload } from '../../src/mqtt/schema.js';
import { device, health, info, snapshot } from './fixtures.js';

const TS = Date.UTC(2026, 0, 1, 12);

function expectValid(kind: PayloadKind, value: unknown): void {
  const result = validatePayload(kind, value);
  expect(result, JSON.stringify(result)).toEqual({ ok: true });
  // one line of JSON, as mosquitto_sub -F '%t %J' needs
  expect(encodePayload(value)).not.toMatch(/\n/);
  expect(JSON.parse(encodePayload(value))).toEqual(value);
}

function expectInvalid(kind: PayloadKind, value: unknown, pattern: RegExp): void {
  const result = validatePayload(kind, value);
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.errors.join('; ')).toMatch(pattern);
}

describe('payload builders produce schema-valid payloads', () => {
  it('status (online and the offline will)', () => {
    expectValid('status', buildStatus('online', 3, TS, { version: '0.1.0' }));
    expectValid('status', buildStatus('offline', 3, TS));
    expectValid('status', buildStatus('offline', 3, TS, { reason: 'stopped', version: undefined }));
  });

  it('info', () => {
    const payload = buildInfo(info, 2, TS);
    expectValid('info', payload);
    expect(payload.runtime.kind).toBe('docker');
    const minimal = buildInfo(
      { ...info, runtime: { ...info.runtime, label: undefined, usbBusBind: undefined } },
      1,
      TS,
    );
    expectValid('info', minimal);
    expect('label' in minimal.runtime).toBe(false);
  });

  it('devices, with count matching the list', () => {
    const payload = buildDevices(
      [device, { ...device, key: 'port:1-2', serial: undefined, address: 5 }],
      1,
      TS,
    );
    expectValid('devices', payload);
    expect(payload.count).toBe(2);
    expect('serial' in (payload.devices[1] ?? {})).toBe(false);
    expectValid('devices', buildDevices([], 1, TS));
  });

  it('target state, with and without a device and outcome', () => {
    expectValid('target', buildTargetState(snapshot, 4, TS));
    const waiting = buildTargetState(
      {
        target: '1209:0001',
        vid: '1209',
        pid: '0001',
        state: 'waiting',
        since: TS,
        attempts: 0,
        reconnects: reconnectStats([], 0, 0),
      },
      4,
      TS,
    );
    expectValid('target', waiting);
    expect(waiting.reconnects.p50Ms).toBeNull();
  });

  it('health, with the publisher-owned queue and broker parts', () => {
    const payload = buildHealth(
      health,
      { depth: 2, dropped: 1, capacity: 10_000 },
      { connected: true, reconnects: 0 },
      1,
      TS,
    );
    expectValid('health', payload);
    expectValid('health', { ...payload, relay: { uevents: 3 } });
  });

  it('every event type src/events.ts defines', () => {
    const drafts: EventDraft[] = [
      eventDraft('device.added', { device, source: 'devfs' }, TS),
      eventDraft('device.removed', { device, source: 'sysfs' }, TS),
      eventDraft(
        'device.detection',
        {
          kind: 'added',
          key: device.key,
          vid: '1209',
          pid: '0001',
          bus: 1,
          address: 4,
          first: 'devfs',
          latencyMs: { devfs: 0, sysfs: 480 },
          missedBy: ['nusb'],
        },
        TS,
      ),
      eventDraft(
        'source.status',
        { source: 'nusb', status: { state: 'unavailable', reason: 'no udevd', code: 'X' } },
        TS,
      ),
      eventDraft('session.state', { target: '1209:0001', state: 'up', previous: 'starting', device }, TS),
      eventDraft(
        'session.state',
        { target: '1209:0001', state: 'backoff', previous: 'starting', reason: 'busy' },
        TS,
      ),
      eventDraft('reconnect.attempt', { target: '1209:0001', attempt: 1, device }, TS),
      eventDraft('reconnect.succeeded', { target: '1209:0001', attempts: 2, device, durationMs: 14.2 }, TS),
      eventDraft(
        'reconnect.failed',
        {
          target: '1209:0001',
          attempt: 2,
          error: { code: 'REPLUG_USB_BUSY', message: 'busy' },
          retryInMs: 500,
        },
        TS,
      ),
    ];
    drafts.forEach((draft, i) => {
      const ev = buildEvent(draft, i + 1, 7);
      expectValid('event', ev);
      expect(ev).toMatchObject({ type: draft.type, seq: i + 1, session: 7, ts: TS });
    });
  });
});

describe('schemas reject what consumers must not receive', () => {
  it('status with a bad state, a missing session or a stray field', () => {
    expectInvalid('status', { state: 'gone', session: 1, ts: TS }, /state/);
    expectInvalid('status', { state: 'online', ts: TS }, /session/);
    expectInvalid('status', { state: 'online', session: 1, ts: TS, extra: 1 }, /extra/);
    expectInvalid('status', { state: 'online', session: 0, ts: TS }, /session/);
  });

  it('devices with a signed or uppercase id (the original tool printed PID -31386)', () => {
    // Written by hand: buildDevices itself leaves such a device out (src/mqtt/payload-bounds.ts).
    const raw = (d: object) => ({ ...buildDevices([device], 1, TS), devices: [d] });
    expectInvalid('devices', raw({ ...device, pid: '-31386' }), /pid/);
    expectInvalid('devices', raw({ ...device, vid: '12AB' }), /vid/);
    expect(buildDevices([{ ...device, pid: '-31386' }], 1, TS)).toMatchObject({ devices: [], count: 0 });
  });

  it('events of unknown type, without seq, or with fields of another type', () => {
    const good = buildEvent(
      eventDraft('reconnect.attempt', { target: '1209:0001', attempt: 1, device }, TS),
      1,
      1,
    );
    expectInvalid('event', { ...good, type: 'device.exploded' }, /type|oneOf/);
    const { seq: _seq, ...noSeq } = good;
    expectInvalid('event', noSeq, /seq/);
    expectInvalid('event', { ...good, durationMs: 3 }, /durationMs|unevaluated/);
    expectInvalid('event', { ...good, attempt: 0 }, /attempt/);
  });

  it('target state with percentiles missing and health without queue', () => {
    const t = buildTargetState(snapshot, 1, TS);
    expectInvalid('target', { ...t, reconnects: { count: 1, ok: 1, failed: 0 } }, /p50Ms/);
    expectInvalid('target', { ...t, target: '1209-0001' }, /target/);
    const h = buildHealth(
      health,
      { depth: 0, dropped: 0, capacity: 1 },
      { connected: false, reconnects: 0 },
      1,
      TS,
    );
    const { queue: _q, ...noQueue } = h;
    expectInvalid('health', noQueue, /queue/);
    expectInvalid('health', { ...h, sources: { floppy: h.sources.devfs } }, /property name/);
  });

  it('knows every kind', () => {
    expect(PAYLOAD_KINDS).toHaveLength(6);
    for (const kind of PAYLOAD_KINDS) expect(validatePayload(kind, {}).ok).toBe(false);
  });
});

describe('reconnectStats', () => {
  it('uses nearest-rank percentiles over successful durations', () => {
    const s = reconnectStats([50, 10, 20, 30, 40, 60, 70, 80, 90, 1000], 10, 2);
    expect(s).toEqual({ count: 12, ok: 10, failed: 2, p50Ms: 50, p95Ms: 1000 });
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([], 50)).toBeNull();
  });
});
