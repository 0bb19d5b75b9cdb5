/**
 * What the session layer tells the rest (habit 4: the low layer owns its event map; src/events.ts composes
 * the agent's from this and src/usb/events.ts).
 */
import type { UsbDevice } from '../usb/types.js';

export type SessionStateName = 'waiting' | 'starting' | 'up' | 'terminating' | 'backoff' | 'stopped';

export interface ErrorInfo {
  code: string;
  message: string;
}

/** Published as events on replug/<agent>/event (src/events.ts lists them). */
export interface SessionEvents {
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
