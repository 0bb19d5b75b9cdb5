/**
 * The agent's log reads like the original tool's: device discovered, removed, session up/down, reconnect
 * took N ms. One listener per event, all removed by the returned function (habit 4).
 */
import type { EventEmitter } from 'node:events';
import { ErrorCodes } from '../errors.js';
import type { AgentEvents } from '../events.js';
import type { Logger } from '../log.js';
import type { UsbDevice } from '../usb/types.js';

function describe(d: UsbDevice): string {
  const name = [d.manufacturer, d.product].filter(Boolean).join(' ');
  const serial = d.serial ? ` serial ${d.serial}` : '';
  return `${d.vid}:${d.pid}${name ? ` ${name}` : ''}${serial} at bus ${d.bus} address ${d.address}${d.portPath ? ` port ${d.portPath}` : ''}`;
}

export function logAgentEvents(events: EventEmitter<AgentEvents>, log: Logger): () => void {
  const handlers: { [K in keyof AgentEvents]?: (...args: AgentEvents[K]) => void } = {
    'device.added': ({ device, source }) =>
      log.info(
        { event: 'device.added', device, source },
        `device discovered: ${describe(device)} (first seen by ${source})`,
      ),
    'device.removed': ({ device, source }) =>
      log.info(
        { event: 'device.removed', device, source },
        `device removed: ${describe(device)} (first seen by ${source})`,
      ),
    'device.detection': (report) => {
      const parts = Object.entries(report.latencyMs).map(([s, ms]) => `${s} +${Math.round(ms ?? 0)} ms`);
      const missed = report.missedBy.length > 0 ? `; missed by ${report.missedBy.join(', ')}` : '';
      log.debug(
        { event: 'device.detection', report },
        `${report.kind} ${report.vid}:${report.pid} seen by ${parts.join(', ')}${missed}`,
      );
    },
    'source.status': ({ source, status }) => {
      // No-bus is said once by the agent itself; other reasons deserve a warning per source.
      if (status.state === 'unavailable' && status.code !== ErrorCodes.NO_USB_BUS)
        log.warn(
          { event: 'source.status', source, status },
          `source ${source} unavailable: ${status.reason}`,
        );
      else log.debug({ event: 'source.status', source, status }, `source ${source} ${status.state}`);
    },
    'session.state': ({ target, state, previous, reason }) => {
      const msg =
        state === 'up'
          ? `session ${target} up`
          : state === 'waiting' && previous !== 'stopped'
            ? `session ${target} down, waiting for the device`
            : `session ${target} ${previous} -> ${state}`;
      log.info(
        { event: 'session.state', target, state, previous, reason },
        reason ? `${msg} (${reason})` : msg,
      );
    },
    'reconnect.attempt': ({ target, attempt }) =>
      log.debug({ event: 'reconnect.attempt', target, attempt }, `session ${target}: attempt ${attempt}`),
    'reconnect.succeeded': ({ target, attempts, durationMs }) =>
      log.info(
        { event: 'reconnect.succeeded', target, attempts, durationMs },
        `session ${target}: reconnect took ${Math.round(durationMs)} ms (${attempts} attempt${attempts === 1 ? '' : 's'})`,
      ),
    'reconnect.failed': ({ target, attempt, error, retryInMs }) =>
      log.warn(
        { event: 'reconnect.failed', target, attempt, error, retryInMs },
        `session ${target}: attempt ${attempt} failed: ${error.message} [${error.code}]${retryInMs !== undefined ? `, retrying in ${retryInMs} ms` : ''}`,
      ),
  };
  const entries = Object.entries(handlers) as [keyof AgentEvents, (...args: unknown[]) => void][];
  for (const [name, fn] of entries) events.on(name, fn as never);
  return () => {
    for (const [name, fn] of entries) events.off(name, fn as never);
  };
}
