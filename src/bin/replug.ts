#!/usr/bin/env node
/**
 * The bin's entry: V8's flags first, then the rest. An ES module's static imports are all loaded before
 * its body runs, so this file imports nothing but node:v8 and the small modules of its own (flags, idle
 * collection, clock), and loads the CLI
 * (run.ts, and through it every command) with a dynamic import once the flags are set: the young
 * generation grows during start-up already, and the module loader's own hot path is what got TurboFan
 * compiled (see v8-flags.ts).
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { systemClock } from '../util/clock.js';
import { collectsWhenIdle, fullCollector, startIdleGc } from './idle-gc.js';
import { holdOptimizer, holdsOptimizer, v8FlagsFor } from './v8-flags.js';

const args = process.argv.slice(2);
const flags = v8FlagsFor(args, process.execArgv, process.env);
if (flags) setFlagsFromString(flags);
const release = holdsOptimizer(args, process.execArgv, process.env)
  ? holdOptimizer(setFlagsFromString)
  : undefined;
// Once the agent has started: the compiler back, and collections when idle after a burst (idle-gc.ts).
const idleGc = collectsWhenIdle(args, process.env);
const onReady =
  release || idleGc
    ? () => {
        release?.();
        if (!idleGc) return;
        startIdleGc({
          clock: systemClock,
          cpuMs: () => {
            const { user, system } = process.cpuUsage();
            return (user + system) / 1000;
          },
          heapPhysical: () => getHeapStatistics().total_physical_size,
          collect: fullCollector(setFlagsFromString),
        });
      }
    : undefined;

const { run } = await import('./run.js');
await run(args, onReady);
