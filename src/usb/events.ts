/**
 * What the USB layer tells the rest (habit 4: the low layer owns its event map; src/events.ts composes
 * the agent's from this and src/session/events.ts).
 */
import type { SourceName, SourceStatus, UsbDevice } from './types.js';

/** Which sources saw one add/remove, and how many ms after the first source each did. */
export interface DetectionReport {
  kind: 'added' | 'removed';
  key: string;
  vid: string;
  pid: string;
  bus: number;
  address: number;
  first: SourceName;
  /** ms after the first sighting, per source that saw it (the first is 0). */
  latencyMs: Partial<Record<SourceName, number>>;
  /** Sources that were active but did not report it within the settle window. */
  missedBy: SourceName[];
}

export interface UsbEvents {
  'device.added': [{ device: UsbDevice; source: SourceName }];
  'device.removed': [{ device: UsbDevice; source: SourceName }];
  /**
   * A present device's serial became known after its add: the first source to see it had no strings (the
   * devfs source's report from sysfs' lock-free attributes on a plug, a uevent, or a read while the
   * device lock held the strings). `device.key` is the serial's from now on (the add's was the port's);
   * not a new device: no detection report.
   */
  'device.identified': [{ device: UsbDevice; source: SourceName }];
  /** Emitted once per add/remove after the settle window closes. */
  'device.detection': [DetectionReport];
  'source.status': [{ source: SourceName; status: SourceStatus }];
}
