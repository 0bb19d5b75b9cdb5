/** Feature `devices`: the retained `devices` topic, the merged list of devices present now. */
import type { Feature } from '../features.js';

export const devicesTopic = (): Feature => ({
  name: 'devices',
  start(ctx) {
    const publish = () => ctx.publisher.setDevices(ctx.watcher.current());
    ctx.on('agent.ready', publish);
    // Every change up to 64 devices, at most every 100 ms above (issue 12: 2,000 devices, each added
    // one by one, republished the whole list 2,000 times).
    ctx.onStop(ctx.watcher.onDevicesChanged(publish, { intervalMs: 100, exactUpTo: 64 }));
  },
});
