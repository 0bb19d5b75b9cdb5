#!/usr/bin/env node
/**
 * The only place that exits the process (habit 7). Signals become an AbortSignal for the command; a second
 * signal while stopping exits at once, for the impatient.
 */
import { main } from '../cli/main.js';
import { faults } from '../util/faults.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (sig: NodeJS.Signals) => {
  signals++;
  if (signals > 1) process.exit(130);
  controller.abort(new Error(`received ${sig}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// An exception inside a dependency must never kill the agent: route it to the running command's log.
process.on('unhandledRejection', (error) => faults.report({ kind: 'unhandledRejection', error }));
process.on('uncaughtException', (error) => faults.report({ kind: 'uncaughtException', error }));

const code = await main(process.argv.slice(2), {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
  cwd: process.cwd(),
});
// Let pino and MQTT flush what they hold, then leave even if a dependency keeps a handle open.
process.exitCode = code;
setTimeout(() => process.exit(code), 200).unref();
