/**
 * Per-stage stamps of one plug on CLOCK_MONOTONIC (issue 17): inotify event -> node listed -> identity
 * read -> strings read -> source report -> watcher add -> session hears -> session open -> listing ->
 * enumerated -> usbfs -> detached -> claimed -> driver opened -> up -> MQTT
 * queued. The lab compares them with the kernel's attach and with other processes in the same VM, so they
 * use process.hrtime (CLOCK_MONOTONIC on Linux, the clock the lab's watchers and kmsg mapping use), not
 * performance.now() (which starts at the process's own origin).
 *
 * Off by default: with no sink set, stamp() is one branch and nothing is allocated. The agent sets a sink
 * when REPLUG_STAMPS=1 (one `stamp` log line per stage).
 */

export type StampStage =
  /** The devfs watch callback that led to the reconcile which listed the node (first one since the last). */
  | 'inotify'
  /** The reconcile's listing had the new node. */
  | 'listed'
  /** Identity known: sysfs' lock-free attributes, or the node's descriptor read. */
  | 'identity'
  /** The strings (serial, manufacturer, product) read; they wait for the kernel's device lock. */
  | 'strings'
  /** A source reported the device (`source` says which). */
  | 'source'
  /** The watcher emitted device.added. */
  | 'added'
  /** The watcher emitted device.identified (the serial became known after the add). */
  | 'identified'
  /** A session heard of the device (sessions hear of it before the features that report it). */
  | 'present'
  /** A session asked its driver to open the device. */
  | 'open'
  /** The default driver: usb@3's device listing started. */
  | 'listing'
  /** The default driver: usb@3's device list read (it reads the strings too, behind the device lock). */
  | 'enumerated'
  /** The default driver: the usbfs node opened (usbdev_open takes the device lock). */
  | 'usbfs'
  /** The default driver: the kernel driver detached (--detach-kernel-driver). */
  | 'detached'
  /** The default driver: interface claimed. */
  | 'claimed'
  /** The driver's open returned. */
  | 'opened'
  /** The session said up. */
  | 'up'
  /** The session.state up event was queued for MQTT. */
  | 'mqtt';

export interface Stamp {
  stage: StampStage;
  /** The device instance, `bus-address`. */
  dev: string;
  /** CLOCK_MONOTONIC, ms. */
  t: number;
  source?: string;
}

export type StampSink = (stamp: Stamp) => void;

let sink: StampSink | undefined;

/** CLOCK_MONOTONIC in ms (process.hrtime reads it on Linux). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Sets (or with undefined, clears) where stamps go. Returns the previous sink. */
export function setStampSink(next: StampSink | undefined): StampSink | undefined {
  const previous = sink;
  sink = next;
  return previous;
}

export function stampsOn(): boolean {
  return sink !== undefined;
}

/** Records one stage of the device instance bus+address; `t` defaults to now. A throwing sink is ignored. */
export function stamp(
  stage: StampStage,
  device: { bus: number; address: number },
  t?: number,
  source?: string,
): void {
  if (sink === undefined) return;
  const s: Stamp = { stage, dev: `${device.bus}-${device.address}`, t: t ?? monotonicMs() };
  if (source !== undefined) s.source = source;
  try {
    sink(s);
  } catch {
    // A trace must never break detection.
  }
}
