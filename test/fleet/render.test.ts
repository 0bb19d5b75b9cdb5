/** The fleet frame at fixed widths without colour: structure and contents, no snapshots. */
import { describe, expect, it } from 'vitest';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { renderFrame } from '../../src/fleet/render.js';
import type { FleetState } from '../../src/fleet/types.js';
import {
  buildDevices,
  buildStatus,
  CONTAINER,
  device,
  eventFor,
  infoFor,
  msg,
  NATIVE,
  T0,
  targetFor,
} from './sim.js';

function fleet(): FleetState {
  let s = emptyFleet();
  const feed = (topic: string, payload: unknown, broker = 'mqtt://a:1883') => {
    s = reduce(s, msg(topic, payload, { broker })).state;
  };
  feed('replug/pi-ok/status', buildStatus('online', 2, T0));
  feed('replug/pi-ok/info', infoFor('pi-ok', 2, NATIVE));
  feed('replug/pi-ok/devices', buildDevices([device], 2, T0));
  feed(
    'replug/pi-ok/target/1209-0001-abc123/state',
    targetFor(2, { lastOutcome: 'succeeded', lastError: undefined }),
  );
  feed(
    'replug/pi-ok/event',
    eventFor(
      'reconnect.succeeded',
      { target: '1209:0001:ABC123', attempts: 1, device, durationMs: 12 },
      9,
      2,
      T0 - 3000,
    ),
  );
  feed('replug/pi-down/status', buildStatus('offline', 4, T0));
  feed('replug/pi-down/info', infoFor('pi-down', 4, NATIVE));
  feed('replug/box/status', buildStatus('online', 1, T0), 'mqtt://b:1883');
  feed('replug/box/info', infoFor('box', 1, CONTAINER), 'mqtt://b:1883');
  feed('replug/box/target/1209-0001-abc123/state', targetFor(1, { state: 'backoff' }), 'mqtt://b:1883');
  feed('replug/box/status', 'garbage', 'mqtt://b:1883');
  return s;
}

const render = (width: number) =>
  renderFrame(fleet(), {
    width,
    color: false,
    now: T0,
    brokers: [
      { url: 'mqtt://a:1883', state: 'connected', ok: true },
      { url: 'mqtt://b:1883', state: 'connected', ok: true },
      { url: 'mqtt://c:1', state: 'unreachable: ECONNREFUSED', ok: false },
    ],
  }).split('\n');

describe('renderFrame', () => {
  it('at 120 columns: groups by broker then runtime, problems first, every column present', () => {
    const lines = render(120);
    expect(lines[0]).toBe('replug watch · 3 agents · 2 online · 1 offline · 0 unknown');
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    expect(at('mqtt://a:1883')).toBeLessThan(at('mqtt://b:1883'));
    expect(at('mqtt://c:1  (unreachable: ECONNREFUSED)')).toBeGreaterThan(0);
    // The offline agent sorts before the healthy one in its runtime group.
    expect(at('○ pi-down')).toBeLessThan(at('● pi-ok'));
    const ok = lines[at('● pi-ok')]!;
    for (const part of [
      'online s2',
      '1209:0001:ABC123',
      'up',
      '67%',
      '12ms/40ms',
      'devfs -nusb',
      '3s ago: reconnected 1209:',
    ]) {
      expect(ok).toContain(part);
    }
    expect(lines[at(' native · netns host/udev/devtmpfs')]).toBeDefined();
    expect(at(' docker (container-hostnet) · netns host/udev/tmpfs')).toBeGreaterThan(0);
    expect(lines[at('docker (container-hostnet)') + 2]).toContain(
      'backoff REPLUG_USB_BUSY'.replace('REPLUG_', ''),
    );
    expect(lines.at(-1)).toBe('warnings: 1 (not-json 1) · last: not-json on replug/box/status');
    expect(lines.join('\n')).not.toContain('\x1b');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(120);
  });

  it('at 80 columns: drops the least important columns whole, keeps agent, status, target, session', () => {
    const lines = render(80);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    const ok = lines.find((l) => l.includes('pi-ok'))!;
    expect(ok).toContain('online s2');
    expect(ok).toContain('1209:0001:ABC123');
    expect(ok).not.toContain('3s ago');
    expect(lines.find((l) => l.includes('AGENT'))).not.toContain('LAST EVENT');
  });

  it('at 40 columns: still one readable row per agent, nothing wider than the terminal', () => {
    const lines = render(40);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(40);
    expect(lines.find((l) => l.includes('pi-down'))).toContain('offline s4');
    expect(lines.some((l) => l.includes('box'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^warnings: 1 /);
  });

  it('colours only when asked', () => {
    const coloured = renderFrame(fleet(), { width: 120, color: true, now: T0 });
    expect(coloured).toContain('\x1b[32monline s2\x1b[0m');
  });
});
