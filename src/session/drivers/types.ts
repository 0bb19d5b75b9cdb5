import type { Logger } from '../../log.js';
import type { UsbDevice } from '../../usb/types.js';

/** How often a session probes a driver that does not say (`--probe-interval`'s default). */
export const DEFAULT_PROBE_INTERVAL_MS = 2000;

export interface DriverContext {
  /** Aborted when the session must end now (device removed, agent stopping): drivers must stop waiting. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * A session to one device (habit 2: hardware behind a port). The session runner owns restarts: a driver
 * only opens, probes and closes. Throw a ReplugError (USB_* codes) to say why something failed; anything
 * else is wrapped as REPLUG_DRIVER_FAILED.
 *
 * A user's module for `--driver ./my-driver.js` default-exports either a SessionDriver or a factory
 * `({ log, options }) => SessionDriver | Promise<SessionDriver>` (options: whatever the agent was told to
 * pass, e.g. `{ probeIntervalMs }`; see drivers/load.ts). Errors may carry a `REPLUG_*` `code` without being
 * ReplugError instances: the session reads the code by shape (error-info.ts).
 */
export interface SessionDriver<H = unknown> {
  readonly name: string;
  /** Open and verify the device; resolves with a handle when the session is up. */
  open(device: UsbDevice, ctx: DriverContext): Promise<H>;
  /** A cheap liveness check, repeated every `probeIntervalMs` while up; rejects when the device is wedged. */
  probe(handle: H, ctx: DriverContext): Promise<void>;
  /** Release everything. Must not hang when the device is already gone. */
  close(handle: H, ctx: DriverContext): Promise<void>;
  /** Default DEFAULT_PROBE_INTERVAL_MS; 0 disables liveness probing. */
  readonly probeIntervalMs?: number;
}
