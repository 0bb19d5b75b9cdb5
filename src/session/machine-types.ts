/** The vocabulary of the session machine (machine.ts): its states, input events and output effects. */

import type { UsbDevice } from '../usb/types.js';
import type { ErrorInfo, SessionStateName } from './events.js';

/** What terminating leads to once the driver has closed (or the cancelled open has settled). */
export type AfterClose =
  | { kind: 'wait' }
  | { kind: 'retry'; failures: number }
  | { kind: 'start'; device: UsbDevice; why?: string }
  | { kind: 'stop' };

export type MachineState<H = unknown> =
  | { name: 'waiting' }
  | { name: 'starting'; device: UsbDevice; attempt: number; failures: number }
  | { name: 'up'; device: UsbDevice; handle: H }
  | {
      name: 'terminating';
      device: UsbDevice;
      /** A cancelled open is still in flight: its handle, if it ever resolves, must be closed. */
      awaitingOpen: boolean;
      next: AfterClose;
    }
  | { name: 'backoff'; device: UsbDevice; attempt: number; failures: number; delayMs: number }
  | { name: 'stopped' };

export type MachineEvent<H = unknown> =
  | { type: 'device.present'; device: UsbDevice }
  | { type: 'device.gone' }
  | { type: 'open.ok'; handle: H }
  | { type: 'open.failed'; error: ErrorInfo }
  | { type: 'probe.due' }
  | { type: 'probe.ok' }
  | { type: 'probe.failed'; error: ErrorInfo }
  | { type: 'closed'; error?: ErrorInfo }
  | { type: 'timer.fired' }
  /** Close the session and open it again on the same device (a `restart` request, issue 18). */
  | { type: 'restart' }
  | { type: 'stop' };

export type MachineEmit =
  | {
      name: 'session.state';
      state: SessionStateName;
      previous: SessionStateName;
      reason?: string;
      device?: UsbDevice;
    }
  | { name: 'reconnect.attempt'; attempt: number; device: UsbDevice }
  | { name: 'reconnect.succeeded'; attempts: number; device: UsbDevice }
  | { name: 'reconnect.failed'; attempt: number; device: UsbDevice; error: ErrorInfo; retryInMs: number };

export type Effect<H = unknown> =
  | { type: 'open'; device: UsbDevice; attempt: number }
  /** Abort the DriverContext signal of the current open/probe, so a driver stuck in I/O returns. */
  | { type: 'abort' }
  | { type: 'close'; handle: H }
  | { type: 'probe'; handle: H }
  | { type: 'startTimer'; ms: number }
  | { type: 'cancelTimer' }
  | { type: 'startProbeTimer' }
  | { type: 'cancelProbeTimer' }
  | { type: 'emit'; event: MachineEmit };
