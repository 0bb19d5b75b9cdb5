/**
 * The session driver: a user's module (--driver FILE), or the default probe driver (open, select
 * configuration 1, claim interface 0, GET_DESCRIPTOR) over the `usb` v3 port.
 */
import type { AgentConfig } from '../config/agent.js';
import type { Logger } from '../log.js';
import { loadDriver } from '../session/drivers/load.js';
import { createProbeDriver } from '../session/drivers/probe.js';
import type { SessionDriver } from '../session/drivers/types.js';
import { createUsbAccess } from '../usb/access.js';
import type { Clock } from '../util/clock.js';

export async function loadSessionDriver(
  config: Pick<
    AgentConfig,
    'driver' | 'driverOptions' | 'detachKernelDriver' | 'probeIntervalMs' | 'devfsRoot'
  >,
  deps: { log: Logger; cwd: string; clock: Clock; signal?: AbortSignal },
): Promise<SessionDriver> {
  if (config.driver) {
    // Said before the wait, so a module that hangs is visible in the log (issue 12).
    deps.log.info(`loading session driver ${config.driver}`);
    // A factory gets every --driver-option, and --probe-interval when given (issue 13); a driver that
    // states no probe interval of its own is probed at --probe-interval.
    const driver = await loadDriver(config.driver, {
      cwd: deps.cwd,
      log: deps.log,
      options: config.driverOptions,
      clock: deps.clock,
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    deps.log.info(`session driver: ${driver.name} (from ${config.driver})`);
    return driver.probeIntervalMs === undefined
      ? { ...driver, probeIntervalMs: config.probeIntervalMs }
      : driver;
  }
  return createProbeDriver({
    access: createUsbAccess(),
    detachKernelDriver: config.detachKernelDriver,
    probeIntervalMs: config.probeIntervalMs,
  }) as SessionDriver;
}
