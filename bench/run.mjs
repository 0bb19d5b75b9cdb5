#!/usr/bin/env node
/**
 * `npm run bench` (after `npm run build`): every benchmark in turn, each in its own Node process so one
 * cannot skew another's event loop. Figures are printed, never asserted; the exit code is non-zero only
 * when a benchmark could not run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const benches = [
  ['latency.mjs', 'issue 3: fake-tree plug -> MQTT subscriber latency, embedded Aedes and Mosquitto'],
  ['watch.mjs', 'issue 4: replug watch throughput and fleet lag'],
  ['delivery.mjs', 'issue 10: QoS 1 events and retained updates to wildcard and persistent subscribers'],
  ['eventloop.mjs', "issue 12: the agent's event-loop delay during a 1,000-cycle replug storm"],
  ['queue-faults.mjs', 'issue 10: the durable queue under disk faults (root; about 6 minutes)'],
];

let failed = 0;
for (const [file, title] of benches) {
  const script = path.join(here, file);
  if (!existsSync(script)) continue;
  console.log(`\n=== bench/${file}: ${title}`);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...process.argv.slice(2)], { stdio: 'inherit' });
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (code !== 0) {
    failed++;
    console.error(`bench/${file} exited with ${code}`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
