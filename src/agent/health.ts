/**
 * The agent's half of the `health` payload: uptime, memory, per-source detection counters, relay.
 *
 * Never throws (issue 12): process.memoryUsage() reads /proc/self/statm through an fd (libuv
 * uv_resident_set_memory), so with the fd table full (EMFILE) it throws, and that throw inside the health
 * timer used to end health reports for the rest of the run. Each part is read on its own; what cannot be
 * read is reported as such (rssBytes null, a source's counters left out), never made up.
 */
import { getHeapStatistics } from 'node:v8';
import type { HealthInput, SourceCounters } from '../mqtt/payloads.js';
import type { RunningRelay } from '../relay/relay.js';
import type { SourceName } from '../usb/types.js';
import type { UsbWatcher } from '../usb/watcher.js';
import type { Clock } from '../util/clock.js';

export interface HealthSources {
  startedAt: number;
  clock: Clock;
  watcher: Pick<UsbWatcher, 'stats'>;
  relay: Pick<RunningRelay, 'stats'> | undefined;
  faults: number;
  /** For tests: process.memoryUsage by default. */
  memoryUsage?: () => { rss: number; heapUsed: number };
}

function memory(read: () => { rss: number; heapUsed: number }): HealthInput['memory'] {
  try {
    const mem = read();
    return { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
  } catch {
    // The heap figure needs no fd; the resident set size does and is unknown now.
    let heapUsed = 0;
    try {
      heapUsed = getHeapStatistics().used_heap_size;
    } catch {
      heapUsed = 0;
    }
    return { rssBytes: null, heapUsedBytes: heapUsed };
  }
}

function sourceCounters(watcher: HealthSources['watcher']): HealthInput['sources'] {
  const sources: Partial<Record<SourceName, SourceCounters>> = {};
  let stats: ReturnType<UsbWatcher['stats']>;
  try {
    stats = watcher.stats();
  } catch {
    return sources;
  }
  for (const [name, s] of Object.entries(stats) as [
    SourceName,
    NonNullable<ReturnType<UsbWatcher['stats']>[SourceName]>,
  ][]) {
    sources[name] = {
      seen: s.seen,
      first: s.first,
      missed: s.missed,
      meanLatencyMs: s.seen === 0 ? null : s.meanLatencyMs,
      maxLatencyMs: s.seen === 0 ? null : s.maxLatencyMs,
    };
  }
  return sources;
}

function relayStats(relay: HealthSources['relay']): Record<string, unknown> | undefined {
  if (!relay) return undefined;
  try {
    return { ...relay.stats() };
  } catch {
    return { error: 'relay statistics unavailable' };
  }
}

export function healthInput(h: HealthSources): HealthInput {
  let uptimeS = 0;
  try {
    uptimeS = Math.max(0, Math.round((h.clock.monotonic() - h.startedAt) / 1000));
  } catch {
    uptimeS = 0;
  }
  const relay = relayStats(h.relay);
  return {
    uptimeS,
    memory: memory(h.memoryUsage ?? (() => process.memoryUsage())),
    sources: sourceCounters(h.watcher),
    ...(relay ? { relay } : {}),
  };
}
