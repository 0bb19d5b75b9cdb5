/** Feature `devices`: the retained `devices` topic, the merged list of devices present now. */
import type { Feature } from '../features.js';

export const devicesTopic = (): Feature => ({
  name: 'devices',
  start(ctx) {
    const publish = () => ctx.publisher.setDevices(ctx.watcher.current());
    ctx.on('agent.ready', publish);
    ctx.on('device.added', publish);
    ctx.on('device.removed', publish);
  },
});
