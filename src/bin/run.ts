/**
 * The only place that exits the process (habit 7). Signals become an AbortSignal for the command; a second
 * signal while stopping exits at once, for the impatient.
 *
 * An uncaught exception leaves the process in a state nobody knows: it is logged (through `faults`, by the
 * running command), the command is asked to stop as on SIGTERM, and the process exits 1 so that systemd or
 * Docker restarts it (issue 12; it used to "carry on"). If the stop does not finish within the agent's stop
 * bound, the process exits anyway. An unhandled rejection is logged and the command carries on.
 */
import { main } from '../cli/main.js';
import { STOP_BOUND_MS } from '../config/agent-options.js';
import { faults } from '../util/faults.js';

/** Runs the command in `args` to its exit code, then exits the process (the entry, replug.ts, calls it). */
export async function run(args: string[], onReady: (() => void) | undefined): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  let crashed = false;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('unhandledRejection', (error) => faults.report({ kind: 'unhandledRejection', error }));
  process.on('uncaughtException', (error) => {
    faults.report({ kind: 'uncaughtException', error });
    if (crashed) return;
    crashed = true;
    process.exitCode = 1;
    controller.abort(error);
    setTimeout(() => process.exit(1), STOP_BOUND_MS + 1000).unref();
  });

  const code = await main(args, {
    onReady,
    env: process.env,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    cwd: process.cwd(),
  });
  const exit = crashed ? 1 : code;
  // Let pino and MQTT flush what they hold, then leave even if a dependency keeps a handle open.
  process.exitCode = exit;
  setTimeout(() => process.exit(exit), 200).unref();
}
