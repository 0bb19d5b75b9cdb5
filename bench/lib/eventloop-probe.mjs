/**
 * Preloaded into the agent under test (`node --import bench/lib/eventloop-probe.mjs ...`) by
 * bench/eventloop.mjs; not part of replug. Over the IPC channel: `start` resets the event-loop delay
 * histogram (perf_hooks.monitorEventLoopDelay) and the counters, `stop` answers with the figures. It
 * also counts the synchronous fs calls that wait for the device (fsyncSync, fdatasyncSync) and the time
 * the event loop spent in them, by wrapping node:fs (syncBuiltinESMExports updates the ESM bindings).
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
const counters = {};
for (const name of ['fsyncSync', 'fdatasyncSync', 'renameSync', 'writeSync', 'openSync']) {
  const original = fs[name];
  counters[name] = { calls: 0, ms: 0, maxMs: 0 };
  fs[name] = function wrapped(...args) {
    const t = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      const ms = performance.now() - t;
      counters[name].calls++;
      counters[name].ms += ms;
      counters[name].maxMs = Math.max(counters[name].maxMs, ms);
    }
  };
}
syncBuiltinESMExports();

process.on('message', (msg) => {
  if (msg === 'start') {
    histogram.reset();
    for (const c of Object.values(counters)) {
      c.calls = 0;
      c.ms = 0;
      c.maxMs = 0;
    }
  } else if (msg === 'stop') {
    process.send?.({
      p50Ms: histogram.percentile(50) / 1e6,
      p99Ms: histogram.percentile(99) / 1e6,
      maxMs: histogram.max / 1e6,
      samples: histogram.count,
      sync: counters,
    });
  }
});
process.channel?.unref();
