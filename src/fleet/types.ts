/**
 * What `replug watch` knows about a fleet. Every AgentState is an immutable value: the reducer replaces an
 * agent whole, so a renderer holding one sees a consistent agent even while messages keep arriving.
 */
import type {
  DevicesPayload,
  HealthPayload,
  InfoPayload,
  SourceCounters,
  StatusPayload,
  TargetStatePayload,
} from '../mqtt/payloads.js';
import type { PayloadKind } from '../mqtt/schema.js';
import type { SourceName } from '../usb/types.js';

/** One MQTT message as the subscriber hands it over (src/mqtt owns the shape; fleet consumes it). */
export type { SubscribedMessage as FleetMessage } from '../mqtt/subscriber.js';

/** Why a message was not applied. The first eight are warnings (hostile or broken publishers). */
export type RejectReason =
  | 'oversized'
  | 'not-json'
  | 'schema'
  | 'bad-topic'
  | 'agent-mismatch'
  | 'target-mismatch'
  /** A new agent id past --max-agents, or a new target past the per-agent bound: dropped, counted. */
  | 'agent-limit'
  | 'target-limit'
  /** Not warnings: normal MQTT life (QoS 1 redelivery, retained state from an older boot, newer agents). */
  | 'duplicate'
  | 'stale'
  | 'unknown-event';

export const WARNING_REASONS: readonly RejectReason[] = [
  'oversized',
  'not-json',
  'schema',
  'bad-topic',
  'agent-mismatch',
  'target-mismatch',
  'agent-limit',
  'target-limit',
];

export interface FleetWarning {
  at: number;
  broker: string;
  /** Sanitised (control characters replaced) and truncated: topics come from strangers. */
  topic: string;
  reason: RejectReason;
  detail: string;
}

export interface Counters {
  received: number;
  accepted: number;
  /** Retained topics cleared with an empty payload. */
  cleared: number;
  rejected: Record<RejectReason, number>;
  /** Boot counter resets recognised (an agent's state dir wiped: online with a lower session). */
  resets: number;
  /** Events whose seq was far ahead of the agent's highest: shown, not trusted. */
  seqJumps: number;
  /** Agents removed to make room for new ones at --max-agents (the least recently seen not online). */
  evicted: number;
}

/** The last events of one agent, for de-duplication by (session, seq) (src/fleet/events.ts). */
export interface EventWindow {
  seqs: Float64Array;
  sessions: Float64Array;
  next: number;
  size: number;
  /** Highest seq seen, jumps aside: only to recognise the next jump. */
  hi: number;
}

/** Detection-source figures for one agent, from health.sources or, lacking that, device.detection events. */
export type SourceStats = Partial<Record<SourceName, SourceCounters>>;

export interface LastEvent {
  type: string;
  seq: number;
  ts: number;
  target?: string;
  summary: string;
}

export interface AgentState {
  /** `${broker} ${agent}`: two brokers carrying the same id stay apart (see docs/watch.md). */
  id: string;
  broker: string;
  agent: string;
  status?: StatusPayload;
  /** Highest boot counter seen on any payload of this agent. */
  session: number;
  /** offline wills ignored because a newer session was already online. */
  staleWills: number;
  info?: InfoPayload;
  devices?: DevicesPayload;
  /** By topic key (`1209-0001-abc`), null-prototype so a hostile key cannot reach Object.prototype. */
  targets: Readonly<Record<string, TargetStatePayload>>;
  health?: HealthPayload;
  /** Folded from device.detection events seen while watching. */
  detection: SourceStats;
  /** durationMs of reconnect.succeeded events seen while watching, by target (CLI form), last 1000 each. */
  reconnectDurations: Readonly<Record<string, readonly number[]>>;
  lastEvent?: LastEvent;
  /** Mutable, owned by this agent's entry, made at its first event: see src/fleet/events.ts. */
  events?: EventWindow;
  /** Times this agent's boot counter went back (a wiped state dir), recognised from its status. */
  resets: number;
  seqJumps: number;
  lastSeen: number;
}

export interface FleetState {
  agents: Map<string, AgentState>;
  counters: Counters;
  /** The most recent warnings, newest last, bounded. */
  warnings: FleetWarning[];
  /** +1 on every change: the renderer redraws only when it moved. */
  version: number;
}

/** A message that passed every check, as the NDJSON output and the reducer see it. */
export type Accepted =
  | { kind: 'status'; agent: string; payload: StatusPayload }
  | { kind: 'info'; agent: string; payload: InfoPayload }
  | { kind: 'devices'; agent: string; payload: DevicesPayload }
  | { kind: 'health'; agent: string; payload: HealthPayload }
  | { kind: 'target'; agent: string; targetKey: string; payload: TargetStatePayload }
  | { kind: 'event'; agent: string; payload: { type: string; seq: number; session: number; ts: number } }
  | { kind: 'cleared'; agent: string; of: PayloadKind; targetKey?: string };
