/**
 * Issue 12: with the fd table full, process.memoryUsage() throws EMFILE (libuv reads /proc/self/statm
 * through an fd), and that throw inside the health timer ended health reports for the rest of the run.
 * healthInput (src/agent/health.ts) must never throw, and must not make a figure up.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { healthInput } from '../../src/agent/health.js';
import { buildHealth } from '../../src/mqtt/payloads.js';
import { validatePayload } from '../../src/mqtt/schema.js';
import type { UsbWatcher } from '../../src/usb/watcher.js';
import { FakeClock } from '../fakes/clock.js';

const emfile = () =>
  Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('health input (issue 12)', () => {
  it('reports rssBytes null, not a throw, when memoryUsage() fails with EMFILE', () => {
    vi.spyOn(process, 'memoryUsage').mockImplementation(() => {
      throw emfile();
    });
    const clock = new FakeClock();
    const watcher = { stats: () => ({}) } as unknown as UsbWatcher;
    const input = healthInput({ startedAt: 0, clock, watcher, relay: undefined, faults: 0 });
    expect(input.memory.rssBytes).toBeNull();
    expect(input.memory.heapUsedBytes).toBeGreaterThan(0);
    const payload = buildHealth(
      input,
      { depth: 0, dropped: 0, capacity: 10 },
      { connected: true, reconnects: 0 },
      1,
      1,
    );
    expect(validatePayload('health', payload)).toEqual({ ok: true });
  });

  it('leaves out what a failing part cannot tell and keeps the rest', () => {
    const clock = new FakeClock();
    const watcher = {
      stats: () => {
        throw emfile();
      },
    } as unknown as UsbWatcher;
    const relay = {
      stats: () => {
        throw emfile();
      },
    };
    const input = healthInput({
      startedAt: 0,
      clock,
      watcher,
      relay: relay as never,
      faults: 0,
    });
    expect(input.sources).toEqual({});
    expect(input.relay).toEqual({ error: 'relay statistics unavailable' });
    expect(typeof input.memory.rssBytes).toBe('number');
  });
});
