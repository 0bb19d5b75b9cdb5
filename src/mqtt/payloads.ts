/**
 * The JSON published under replug/<agent>/... as TypeScript types, and pure builders for them. These types
 * mirror docs/schemas/*.schema.json (the contract consumers read); test/mqtt/payloads.test.ts validates
 * every builder's output against those schemas, so the two cannot drift silently.
 */
import type { AgentEventName, AgentEvents } from '../events.js';
import type { ReconnectStats, TargetState } from '../session/target-state.js';
import type { SourceName, SourceStatus, UsbDevice } from '../usb/types.js';
import * as bound from './payload-bounds.js';

export interface StatusPayload {
  state: 'online' | 'offline';
  /** Boot counter: a will carrying an older session than the last `online` is stale. */
  session: number;
  ts: number;
  version?: string;
  /** 'stopped' on a clean stop; absent in the will. */
  reason?: string;
}

export interface RuntimeFacts {
  /** native, docker, podman, kubernetes, lxc, containerd, container (engine unknown) ... */
  kind: string;
  /** User-given name of this runtime, e.g. `container-hostnet`. */
  label?: string;
  netns: 'own' | 'host' | 'unknown';
  udev: boolean;
  /** Filesystem type of /dev: devtmpfs natively, tmpfs in most containers. */
  devfs: string;
  usbBusBind?: boolean;
  userns: 'initial' | 'user' | 'unknown';
  usbBus: boolean;
}

export interface SourceInfo {
  name: SourceName;
  state: SourceStatus['state'];
  reason?: string;
  code?: string;
}

export interface InfoPayload {
  agent: string;
  version: string;
  host: string;
  arch: string;
  platform: string;
  node: string;
  pid: number;
  runtime: RuntimeFacts;
  sources: SourceInfo[];
  /** Target keys as the CLI prints them: `vvvv:pppp` or `vvvv:pppp:SERIAL`. */
  targets: string[];
  broker: { embedded: boolean; url: string; protocolVersion?: 4 | 5 };
  session: number;
  ts: number;
}

export interface DevicesPayload {
  devices: UsbDevice[];
  count: number;
  session: number;
  ts: number;
}

export type { ReconnectStats } from '../session/target-state.js';

/** What the session manager hands over for one target; the publisher adds session and ts. */
export type TargetSnapshot = TargetState;

export interface TargetStatePayload extends TargetSnapshot {
  session: number;
  ts: number;
}

export interface SourceCounters {
  seen: number;
  first: number;
  missed: number;
  meanLatencyMs: number | null;
  maxLatencyMs: number | null;
}

/** The queue file's health (issue 10): while `failing`, queued events are delivered from memory. */
export interface QueueDiskStats {
  state: 'ok' | 'failing';
  /** Times the file went from writable to failing since the agent started. */
  failures: number;
  /** errno of the last failure: ENOSPC, EROFS, EACCES, EPERM, ENOENT (state dir removed), EIO... */
  error?: string;
  /** Queued events that are in memory only (lost if the agent stops before the disk recovers). */
  unsaved: number;
}

export interface QueueStats {
  depth: number;
  /** Dropped at the bound (oldest not yet sent first) since the state dir was created. */
  dropped: number;
  capacity: number;
  /** Refused by the broker for good (negative MQTT 5 PUBACK) since the state dir was created. */
  refused?: number;
  /** Lines of the queue file that could not be trusted when this run started, left out. */
  skipped?: number;
  disk?: QueueDiskStats;
}

/** What the agent hands over for health; the publisher adds queue, broker, session and ts. */
export interface HealthInput {
  uptimeS: number;
  /** rssBytes is null when the kernel refused the read (no free fd: EMFILE). */
  memory: { rssBytes: number | null; heapUsedBytes: number };
  sources: Partial<Record<SourceName, SourceCounters>>;
  relay?: Record<string, unknown>;
  /** Recovery ladder and action totals (issue 15), when configured. */
  heal?: {
    climbs: number;
    healed: number;
    exhausted: number;
    refused: number;
    actions: { ok: number; failed: number; timeout: number };
  };
}

export interface HealthPayload extends HealthInput {
  queue: QueueStats;
  broker: { connected: boolean; reconnects: number };
  session: number;
  ts: number;
}

/** Event types on the wire: the agent's events plus source.status. */
export type EventType = AgentEventName;

/** One event's type-specific fields, exactly as src/events.ts emits them. */
export type EventData<K extends EventType> = AgentEvents[K][0];

export type EventPayload = {
  [K in EventType]: { type: K; seq: number; session: number; ts: number } & EventData<K>;
}[EventType];

/** An event before the queue gives it a seq: what the publisher stores and later stamps. */
export type EventDraft = { [K in EventType]: { type: K; ts: number } & EventData<K> }[EventType];

export function buildStatus(
  state: 'online' | 'offline',
  session: number,
  ts: number,
  extra: { version?: string; reason?: string } = {},
): StatusPayload {
  const e = { ...extra };
  if (e.version !== undefined) e.version = bound.text(e.version, bound.MAX_SHORT_TEXT);
  if (e.reason !== undefined) e.reason = bound.text(e.reason);
  return { state, session, ts, ...defined(e) };
}

export function buildDevices(devices: readonly UsbDevice[], session: number, ts: number): DevicesPayload {
  const list = bound.devices(devices).map((d) => defined({ ...d }));
  return { devices: list, count: list.length, session, ts };
}

export function buildTargetState(snapshot: TargetSnapshot, session: number, ts: number): TargetStatePayload {
  const s = { ...snapshot };
  if (s.device) s.device = bound.device(s.device);
  if (s.lastError) s.lastError = bound.errorInfo(s.lastError);
  return { ...defined(s), session, ts };
}

export function buildHealth(
  input: HealthInput,
  queue: QueueStats,
  broker: { connected: boolean; reconnects: number },
  session: number,
  ts: number,
): HealthPayload {
  return { ...defined({ ...input }), queue, broker, session, ts };
}

export function buildInfo(
  info: Omit<InfoPayload, 'session' | 'ts'>,
  session: number,
  ts: number,
): InfoPayload {
  const short = (v: string) => bound.text(v, bound.MAX_SHORT_TEXT);
  const runtime = { ...info.runtime, devfs: short(info.runtime.devfs) };
  if (runtime.label !== undefined) runtime.label = short(runtime.label);
  const sources = info.sources.map((src) =>
    src.reason === undefined ? src : { ...src, reason: bound.text(src.reason) },
  );
  const checked = {
    ...info,
    version: short(info.version),
    host: short(info.host),
    arch: short(info.arch),
    platform: short(info.platform),
    node: short(info.node),
    sources,
    broker: { ...info.broker, url: bound.text(info.broker.url) },
    runtime: defined(runtime),
  };
  return { ...defined(checked), session, ts };
}

/** Stamps a stored draft with its seq and the current session: the wire form. */
export function buildEvent(draft: EventDraft, seq: number, session: number): EventPayload {
  return { ...defined({ ...draft }), seq, session } as EventPayload;
}

export function eventDraft<K extends EventType>(type: K, data: EventData<K>, ts: number): EventDraft {
  return { ...defined(bound.eventFields(type, data as object)), type, ts } as EventDraft;
}

/**
 * Reconnect statistics from the durations of successful reconnects (nearest-rank percentiles, so the
 * reported figure is a duration that actually happened).
 */
export function reconnectStats(durationsMs: readonly number[], ok: number, failed: number): ReconnectStats {
  const sorted = [...durationsMs].sort((a, b) => a - b);
  return { count: ok + failed, ok, failed, p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95) };
}

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

/** One line of JSON (the issue: readable with `mosquitto_sub -F '%t %J'`). JSON.stringify never emits newlines without an indent. */
export function encodePayload(value: unknown): string {
  return JSON.stringify(value);
}

/** Drops keys whose value is undefined: JSON would drop them anyway, but schemas and deep-equal tests should see the same object. */
function defined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as T;
}
