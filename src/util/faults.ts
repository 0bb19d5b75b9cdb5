/**
 * Faults that escape a dependency (an unhandled rejection inside the `usb` package when /sys/bus/usb is
 * missing, for one) must never kill the agent. src/bin routes process-level faults here; the running
 * command logs them and counts them in `health`. With no listener, one line goes to stderr.
 */
import { EventEmitter } from 'node:events';

export interface Fault {
  kind: 'unhandledRejection' | 'uncaughtException';
  error: unknown;
}

class Faults extends EventEmitter<{ fault: [Fault] }> {
  count = 0;
  report(fault: Fault, fallback: NodeJS.WritableStream = process.stderr): void {
    this.count++;
    if (this.listenerCount('fault') > 0) {
      this.emit('fault', fault);
      return;
    }
    const message = fault.error instanceof Error ? fault.error.message : String(fault.error);
    fallback.write(`replug: ${fault.kind} inside a dependency, carrying on: ${message}\n`);
  }
}

export const faults = new Faults();
