#!/usr/bin/env node
/**
 * `npm run bench` (after `npm run build`): every benchmark in turn, each in its own Node process so one
 * cannot skew another's event loop. Figures are printed, never asserted; the exit code is non-zero only
 * when a benchmark could not run. Every PASS and FAIL line is counted and summed up at the end.
 * `node bench/run.mjs --only startup,footprint` runs some of them.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const benches = [
  ['latency.mjs', 'issue 3: fake-tree plug -> MQTT subscriber latency, embedded Aedes and Mosquitto'],
  ['watch.mjs', 'issues 4, 17: replug watch vs mosquitto_sub on one stream, 10,000-agent census, fleet lag'],
  ['footprint.mjs', 'issue 17: idle RSS and CPU, embedded broker and --mqtt; RSS over 10,000 replug cycles'],
  ['startup.mjs', 'issue 17: exec -> retained online, with the stages'],
  ['scale.mjs', 'issue 17: 1,000 devices at start, replug list, 100 targets'],
  ['delivery.mjs', 'issue 10: QoS 1 events and retained updates to wildcard and persistent subscribers'],
  ['eventloop.mjs', "issue 12: the agent's event-loop delay during a 1,000-cycle replug storm"],
  ['queue-faults.mjs', 'issue 10: the durable queue under disk faults (root; about 6 minutes)'],
];

// --only a,b runs just those (file names without .mjs); every other argument goes to each benchmark.
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? new Set(process.argv[onlyAt + 1].split(',').map((n) => `${n}.mjs`)) : undefined;
let failed = 0;
let passes = 0;
const fails = [];
for (const [file, title] of benches) {
  const script = path.join(here, file);
  if (!existsSync(script) || (only && !only.has(file))) continue;
  console.log(`\n=== bench/${file}: ${title}`);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...process.argv.slice(2)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let rest = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (/\bFAIL\b/.test(line)) fails.push(`bench/${file}:${line}`);
        else if (/\bPASS\b/.test(line)) passes++;
      }
    });
    child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  if (code !== 0) {
    failed++;
    console.error(`bench/${file} exited with ${code}`);
  }
}
console.log(`\n=== summary: ${passes} PASS, ${fails.length} FAIL`);
for (const line of fails) console.log(line);
process.exitCode = failed === 0 ? 0 : 1;
