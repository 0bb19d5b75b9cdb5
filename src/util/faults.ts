/**
 * Faults that escape a dependency and reach the process: src/bin routes `uncaughtException` and
 * `unhandledRejection` here, and the running command logs them (the agent's `log` feature). With no
 * listener, one line goes to stderr.
 *
 * What happens next is src/bin's to decide (only it exits): an uncaught exception ends the process with
 * exit 1, since the agent's state is unknown after one (systemd and Docker restart it); an unhandled
 * rejection is logged and the agent carries on (the `usb` package rejects from inside itself when
 * /sys/bus/usb is missing, notes/usb-in-containers.md).
 */
import { EventEmitter } from 'node:events';

export interface Fault {
  kind: 'unhandledRejection' | 'uncaughtException';
  error: unknown;
}

class Faults extends EventEmitter<{ fault: [Fault] }> {
  report(fault: Fault, fallback: NodeJS.WritableStream = process.stderr): void {
    if (this.listenerCount('fault') > 0) {
      this.emit('fault', fault);
      return;
    }
    const message = fault.error instanceof Error ? fault.error.message : String(fault.error);
    fallback.write(`replug: ${fault.kind} inside a dependency: ${message}\n`);
  }
}

export const faults = new Faults();
