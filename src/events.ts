/**
 * The agent's typed event map (habit 4). Sources feed the watcher, the watcher and sessions emit these,
 * and the MQTT publisher and the log are listeners that their owner removes on stop.
 */
import type { SourceName, SourceStatus, UsbDevice } from './usb/types.js';

export type SessionStateName = 'waiting' | 'starting' | 'up' | 'terminating' | 'backoff' | 'stopped';

export interface ErrorInfo {
  code: string;
  message: string;
}

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

export interface AgentEvents {
  'device.added': [{ device: UsbDevice; source: SourceName }];
  'device.removed': [{ device: UsbDevice; source: SourceName }];
  /** Emitted once per add/remove after the settle window closes. */
  'device.detection': [DetectionReport];
  'source.status': [{ source: SourceName; status: SourceStatus }];
  'session.state': [
    {
      target: string;
      state: SessionStateName;
      previous: SessionStateName;
      reason?: string;
      device?: UsbDevice;
    },
  ];
  'reconnect.attempt': [{ target: string; attempt: number; device: UsbDevice }];
  'reconnect.succeeded': [
    {
      target: string;
      attempts: number;
      device: UsbDevice /** device seen -> session up */;
      durationMs: number;
    },
  ];
  'reconnect.failed': [
    { target: string; attempt: number; device?: UsbDevice; error: ErrorInfo; retryInMs?: number },
  ];
}

export type AgentEventName = keyof AgentEvents;

/** Every event name, in one list: the agent publishes these and `replug watch` knows these. */
export const AGENT_EVENT_NAMES = [
  'device.added',
  'device.removed',
  'device.detection',
  'source.status',
  'session.state',
  'reconnect.attempt',
  'reconnect.succeeded',
  'reconnect.failed',
] as const satisfies readonly AgentEventName[];

// Fails to compile when an event is added to AgentEvents but not to the list above.
type Missing = Exclude<AgentEventName, (typeof AGENT_EVENT_NAMES)[number]>;
export const allEventNamesListed: Missing extends never ? true : never = true;
