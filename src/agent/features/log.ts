/**
 * Feature `log`: the agent's log reads like the original tool's (device discovered, removed, session
 * up/down, reconnect took N ms); the no-USB-bus notice said once; faults that escape a dependency.
 */
import { ErrorCodes } from '../../errors.js';
import type { UsbDevice } from '../../usb/types.js';
import { type Fault, faults } from '../../util/faults.js';
import type { BusEvents } from '../bus.js';
import type { Feature, FeatureContext } from '../features.js';
import { isRealTree } from '../sources.js';

function describe(d: UsbDevice): string {
  const name = [d.manufacturer, d.product].filter(Boolean).join(' ');
  const serial = d.serial ? ` serial ${d.serial}` : '';
  return `${d.vid}:${d.pid}${name ? ` ${name}` : ''}${serial} at bus ${d.bus} address ${d.address}${d.portPath ? ` port ${d.portPath}` : ''}`;
}

type Handlers = { [K in keyof BusEvents]?: (...args: BusEvents[K]) => void };

function eventLines(log: FeatureContext['log']): Handlers {
  return {
    'device.added': ({ device, source }) =>
      log.info(
        { event: 'device.added', device, source },
        `device discovered: ${describe(device)} (first seen by ${source})`,
      ),
    'device.identified': ({ device, source }) =>
      log.info(
        { event: 'device.identified', device, source },
        `device identified: ${describe(device)} (strings read by ${source})`,
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
}

/** One `on` per event, typed: a loop over the names would need a cast. */
function listen(ctx: FeatureContext, h: Handlers): void {
  if (h['device.added']) ctx.on('device.added', h['device.added']);
  if (h['device.identified']) ctx.on('device.identified', h['device.identified']);
  if (h['device.removed']) ctx.on('device.removed', h['device.removed']);
  if (h['device.detection']) ctx.on('device.detection', h['device.detection']);
  if (h['source.status']) ctx.on('source.status', h['source.status']);
  if (h['session.state']) ctx.on('session.state', h['session.state']);
  if (h['reconnect.attempt']) ctx.on('reconnect.attempt', h['reconnect.attempt']);
  if (h['reconnect.succeeded']) ctx.on('reconnect.succeeded', h['reconnect.succeeded']);
  if (h['reconnect.failed']) ctx.on('reconnect.failed', h['reconnect.failed']);
}

export const logLines = (): Feature => ({
  name: 'log',
  start(ctx) {
    const { log } = ctx;
    listen(ctx, eventLines(log));
    // "No USB bus" is normal (a VM, a CI machine): the watcher says it once for all sources, and again
    // when a bus appears.
    ctx.on('usb.bus', (state) => {
      if (!state.present)
        log.warn(`${state.reason}; replug keeps running and starts watching when a bus appears`);
      else log.info('a USB bus appeared; watching it');
    });
    ctx.on('agent.ready', () => {
      const { config } = ctx;
      if (!isRealTree(config)) log.info(`watching the tree at ${config.sysfsRoot} and ${config.devfsRoot}`);
    });
    const onFault = (f: Fault) =>
      log.error(
        { err: f.error, kind: f.kind },
        f.kind === 'uncaughtException'
          ? 'uncaught exception: the agent stops and exits 1, so that systemd or Docker restarts it'
          : 'unhandledRejection inside a dependency; the agent carries on',
      );
    faults.on('fault', onFault);
    ctx.onStop(() => faults.off('fault', onFault));
  },
});
