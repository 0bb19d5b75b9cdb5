/**
 * Moves events from the durable queue to the broker: at most `window` in flight, each acknowledged in the
 * queue only on its PUBACK (issue 3: nothing lost when a publish is in flight at disconnect).
 *
 * pause() on a dropped connection keeps the in-flight set: MQTT.js holds those PUBLISHes in its outgoing
 * store and replays them, in order, before it emits `connect` (mqtt client.ts _onConnect), so resuming
 * after `connect` keeps seq order at the broker. reset() is for a client that is gone (stop, protocol fall
 * back): its publishes are lost with it, so sending restarts at the first unacknowledged event.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { EventPayload } from './payloads.js';
import type { DurableQueue } from './queue.js';

export type SendEvent = (event: EventPayload) => Promise<unknown>;

export class EventPump {
  private send: SendEvent | undefined;
  private cursor = 0;
  private generation = 0;
  private readonly inflight = new Set<number>();
  private readonly idleWaiters = new Set<() => void>();

  constructor(
    private readonly queue: DurableQueue,
    private readonly clock: Clock,
    private readonly window: number,
    /** A negative MQTT 5 PUBACK (reason >= 0x80, e.g. 0x87 not authorized): re-sending cannot succeed. */
    private readonly onRefused: (event: EventPayload, err: Error & { code?: unknown }) => void,
  ) {}

  /** Connected (again): send through `send` from where we are. */
  resume(send: SendEvent): void {
    this.send = send;
    this.pump();
  }

  /** Connection down: stop sending; what is in flight stays with the client. */
  pause(): void {
    this.send = undefined;
  }

  /** The client is gone: forget its in-flight publishes and re-send from the first unacknowledged event. */
  reset(): void {
    this.generation++;
    this.send = undefined;
    this.cursor = 0;
    this.inflight.clear();
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  pump(): void {
    const send = this.send;
    if (!send) return;
    const gen = this.generation;
    for (const ev of this.queue.peek(this.cursor, this.window - this.inflight.size)) {
      this.cursor = ev.seq;
      this.inflight.add(ev.seq);
      send(ev).then(
        () => {
          if (gen !== this.generation) return;
          this.done(ev.seq);
        },
        (err: Error & { code?: unknown }) => {
          if (gen !== this.generation) return;
          if (typeof err.code === 'number' && err.code >= 0x80) {
            this.onRefused(ev, err);
            this.done(ev.seq);
          } else {
            this.inflight.delete(ev.seq);
            this.cursor = 0; // the client lost it: re-send from the first unacknowledged event
            this.pump();
          }
        },
      );
    }
  }

  /** Resolves once the queue is empty (every event acknowledged or dropped). */
  idle(timeoutMs = 10_000): Promise<void> {
    if (this.queue.depth === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.idleWaiters.delete(done);
        this.clock.clearTimeout(timer);
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        this.idleWaiters.delete(done);
        reject(
          new ReplugError(
            ErrorCodes.MQTT_CONNECT,
            `${this.queue.depth} events still queued after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  private done(seq: number): void {
    this.inflight.delete(seq);
    this.queue.ack(seq);
    this.pump();
    if (this.queue.depth === 0) for (const w of [...this.idleWaiters]) w();
  }
}
