/**
 * Feature `relay` (--relay): `replug relay` in-process, so libusb apps in this container see replugs; its
 * counters go into `health`. A relay that cannot start (no CAP_NET_ADMIN, a udevd already broadcasting)
 * stops the agent's start with one line: the user asked for it.
 */
import { rehint } from '../../cli/hints.js';
import { ErrorCodes } from '../../errors.js';
import type { Feature } from '../features.js';

export const relay = (): Feature => ({
  name: 'relay',
  enabled: (config) => config.relay,
  async start(ctx) {
    const { startRelay } = await import('../../relay/relay.js');
    const running = await startRelay({
      logger: ctx.log.child({ module: 'relay' }),
      clock: ctx.clock,
      procRoot: ctx.config.procRoot,
      sysfsRoot: ctx.config.sysfsRoot,
      runRoot: ctx.runRoot,
    }).catch((err: unknown) => {
      throw rehint(err, ErrorCodes.RELAY_UDEV_PRESENT, (e) => `${e.hint}; leave out --relay`);
    });
    ctx.reports.relay = () => running.stats();
    ctx.onStop(() => {
      delete ctx.reports.relay;
      return running.stop();
    });
  },
});
