/** The agent's half of the `health` payload: uptime, memory, per-source detection counters, relay. */
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
}

export function healthInput(h: HealthSources): HealthInput {
  const mem = process.memoryUsage();
  const sources: Partial<Record<SourceName, SourceCounters>> = {};
  for (const [name, s] of Object.entries(h.watcher.stats()) as [
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
  return {
    uptimeS: Math.round((h.clock.monotonic() - h.startedAt) / 1000),
    memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
    sources,
    ...(h.relay ? { relay: { ...h.relay.stats() } } : {}),
  };
}
