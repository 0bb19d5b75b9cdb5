import type { SourceEvent, SourceListener, SourceStatus } from '../../src/usb/types.js';

/** Collects what a source reports and waits (real time) for a condition: for real-inotify tests. */
export class Recorder implements SourceListener {
  readonly events: SourceEvent[] = [];
  readonly statuses: SourceStatus[] = [];

  event(ev: SourceEvent): void {
    this.events.push(ev);
  }

  status(status: SourceStatus): void {
    this.statuses.push(status);
  }

  summary(): string[] {
    return this.events.map((e) => `${e.type} ${e.device.bus}-${e.device.address}`);
  }

  async waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.summary())}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
