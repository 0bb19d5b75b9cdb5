/**
 * Stops what the agent started, last first, within a stated bound (issue 12: SIGTERM used to wait 20 s+
 * for a hung open). Each part gets its own bound and the whole a total; a part that has not finished by
 * then is abandoned with one log line and the next one stops, so the process can always exit in time.
 */
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';

interface Part {
  name: string;
  stop: () => unknown;
  boundMs: number;
}

export class Stopper {
  private readonly parts: Part[] = [];
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The whole stop takes at most this long. */
    private readonly totalMs: number,
  ) {}

  /** Registers how to stop a part that just started (stopped in the reverse order). */
  add(name: string, stop: () => unknown, boundMs = 1000): void {
    this.parts.push({ name, stop, boundMs });
  }

  /** Runs every stop once, however often it is called; resolves within totalMs. */
  stop(): Promise<void> {
    this.stopping ??= this.run();
    return this.stopping;
  }

  private async run(): Promise<void> {
    const deadline = this.clock.monotonic() + this.totalMs;
    const parts = this.parts.splice(0).reverse();
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as Part;
      const left = deadline - this.clock.monotonic();
      if (left <= 0) {
        const rest = parts.slice(i).map((p) => p.name);
        this.log.warn(
          { abandoned: rest },
          `stop: out of time (${this.totalMs} ms); abandoned ${rest.join(', ')}`,
        );
        return;
      }
      const bound = Math.min(part.boundMs, left);
      const outcome = await this.within(bound, part.stop);
      if (outcome === 'late')
        this.log.warn(
          { part: part.name, boundMs: bound },
          `stop: ${part.name} did not finish within ${bound} ms; abandoned`,
        );
      else if (outcome !== 'done')
        this.log.warn({ err: outcome, part: part.name }, `error while stopping ${part.name}`);
    }
  }

  private within(ms: number, fn: () => unknown): Promise<'done' | 'late' | unknown> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve('late'), ms);
      Promise.resolve()
        .then(fn)
        .then(
          () => resolve('done'),
          (err: unknown) => resolve(err ?? new Error('stop failed')),
        )
        .finally(() => this.clock.clearTimeout(timer));
    });
  }
}
