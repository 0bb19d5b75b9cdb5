/**
 * The watcher's bookkeeping that is not about time: per-source counters for the health topic, and how
 * the views of several sources merge into one identity.
 */
import type { SourceName, SourceStatus, UsbDevice } from './types.js';
import { deviceKey } from './types.js';

export interface SourceStats {
  status: SourceStatus['state'];
  /** add/remove sightings matched to a real instance. */
  seen: number;
  /** Times this source was the first to report. */
  first: number;
  /** Times it was active but did not report within the settle window. */
  missed: number;
  /** Sightings that belonged to an instance already gone (lagging view), ignored. */
  stale: number;
  /** Sightings after the settle window closed: already counted in missed, so not in seen. */
  late: number;
  /** ms after the first source, over this source's sightings (0 when it was first). */
  meanLatencyMs: number;
  maxLatencyMs: number;
}

interface Counter {
  seen: number;
  first: number;
  missed: number;
  stale: number;
  late: number;
  sum: number;
  max: number;
}

export class SourceCounters {
  private readonly counters = new Map<SourceName, Counter>();

  of(name: SourceName): Counter {
    let c = this.counters.get(name);
    if (!c) {
      c = { seen: 0, first: 0, missed: 0, stale: 0, late: 0, sum: 0, max: 0 };
      this.counters.set(name, c);
    }
    return c;
  }

  /** A later source reporting `ms` after the first. */
  sighting(name: SourceName, ms: number): void {
    const c = this.of(name);
    c.seen++;
    c.sum += ms;
    c.max = Math.max(c.max, ms);
  }

  snapshot(
    names: readonly SourceName[],
    statusOf: (name: SourceName) => SourceStatus['state'],
  ): Partial<Record<SourceName, SourceStats>> {
    const out: Partial<Record<SourceName, SourceStats>> = {};
    for (const name of names) {
      const c = this.of(name);
      out[name] = {
        status: statusOf(name),
        seen: c.seen,
        first: c.first,
        missed: c.missed,
        stale: c.stale,
        late: c.late,
        meanLatencyMs: c.seen === 0 ? 0 : Math.round((c.sum / c.seen) * 10) / 10,
        maxLatencyMs: Math.round(c.max * 10) / 10,
      };
    }
    return out;
  }
}

/** Later names win: sysfs is authoritative for strings, so it merges last. */
const MERGE_ORDER: SourceName[] = ['nusb', 'uevent', 'devfs', 'sysfs'];

export /** One identity from every source's view; defined fields of later sources (sysfs last) win. */
function merge(views: Map<SourceName, UsbDevice>): UsbDevice {
  const ordered = [...views].sort(([a], [b]) => MERGE_ORDER.indexOf(a) - MERGE_ORDER.indexOf(b));
  const merged = {} as UsbDevice;
  for (const [, view] of ordered) {
    for (const [k, v] of Object.entries(view))
      if (v !== undefined && v !== '') (merged as unknown as Record<string, unknown>)[k] = v;
  }
  merged.key = deviceKey(merged);
  return merged;
}
