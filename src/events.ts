/**
 * The agent's event maps, composed from the layers that own them (src/usb/events.ts,
 * src/session/events.ts). `AgentEvents` are the events published on replug/<agent>/event (a contract:
 * docs/topics.md, docs/schemas); src/agent/bus.ts adds the agent's internal ones.
 */
import type { ActionEvents } from './actions/events.js';
import type { HealEvents } from './heal/events.js';
import type { SessionEvents } from './session/events.js';
import type { UsbEvents } from './usb/events.js';

export type { ErrorInfo, SessionStateName } from './session/events.js';
export type { DetectionReport } from './usb/events.js';

export interface AgentEvents extends UsbEvents, SessionEvents, HealEvents, ActionEvents {}

export type AgentEventName = keyof AgentEvents;

/** Every event name, in one list: the agent publishes these and `replug watch` knows these. */
export const AGENT_EVENT_NAMES = [
  'device.added',
  'device.identified',
  'device.removed',
  'device.detection',
  'source.status',
  'session.state',
  'reconnect.attempt',
  'reconnect.succeeded',
  'reconnect.failed',
  'heal.step',
  'action.run',
] as const satisfies readonly AgentEventName[];

// Fails to compile when an event is added to AgentEvents but not to the list above.
type Missing = Exclude<AgentEventName, (typeof AGENT_EVENT_NAMES)[number]>;
export const allEventNamesListed: Missing extends never ? true : never = true;
