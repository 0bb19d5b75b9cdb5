/**
 * Moves events from the durable queue to the broker: at most `window` in flight, each acknowledged in the
 * queue only on its PUBACK (issue 3: nothing lost when a publish is in flight at disconnect).
 *
 * pause() on a dropped connection keeps the in-flight set: MQTT.js holds those PUBLISHes in its outgoing
 * store and replays them, in order, with their callbacks, before it emits `connect` (mqtt client.ts
 * _onConnect, startStreamProcess). So an event in flight is never sent again by the pump while its client
 * lives (issue 12: the old `cursor = 0` re-sent every in-flight event after one failure, duplicates on the
 * wire); only the event whose own publish failed (the client dropped it: "Connection closed" from a
 * publish queued during the store replay, "client disconnecting") goes back to waiting, and is re-sent
 * after `retryMs` or the next resume, so a publish that keeps failing cannot spin. reset() is for a client
 * that is gone (stop, protocol fall back): its publishes are lost with it, so everything in flight waits
 * again and sending restarts at the first unacknowledged event.
 *
 * No callback can lose a slot (issue 12: a throw in the negative-PUBACK path skipped `done()`, one slot per
 * connection): the outcome of a publish is settled in the queue first, and whatever the callbacks throw
 * is caught and logged.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventPayload } from './payloads.js';
import type { DurableQueue } from './queue.js';

export type SendEvent = (event: EventPayload) => Promise<unknown>;

export interface PumpOptions {
  /** After a publish the client dropped, wait this long before sending again (unless reconnected). Default 1000. */
  retryMs?: number;
  log?: Logger;
}

type Link =
  | { kind: 'paused' }
  | { kind: 'live'; send: SendEvent }
  | { kind: 'holding'; send: SendEvent; timer: TimerHandle };

/** MQTT 5 PUBACK reason >= 0x80 (e.g. 0x87 not authorized): re-sending cannot succeed (MQTT 5 §3.4.2.1). */
function isRefusal(err: unknown): err is Error & { code: number } {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code >= 0x80;
}

export class EventPump {
  private link: Link = { kind: 'paused' };
  private generation = 0;
  private readonly idleWaiters = new Set<() => void>();
  private readonly window: number;
  private readonly retryMs: number;
  private readonly log: Logger;

  constructor(
    private readonly queue: DurableQueue,
    private readonly clock: Clock,
    window: number,
    /** A negative MQTT 5 PUBACK: the event is dropped from the queue and counted as refused. */
    private readonly onRefused: (event: EventPayload, err: Error & { code?: unknown }) => void,
    options: PumpOptions = {},
  ) {
    // More in flight than the queue holds would leave nothing droppable at the bound.
    this.window = Math.max(1, Math.min(window, queue.capacity));
    this.retryMs = options.retryMs ?? 1000;
    this.log = options.log ?? silentLogger();
  }

  /** Connected (again): send through `send` from where we are. */
  resume(send: SendEvent): void {
    this.unhold();
    this.link = { kind: 'live', send };
    this.pump();
  }

  /** Connection down: stop sending; what is in flight stays with the client. */
  pause(): void {
    this.unhold();
    this.link = { kind: 'paused' };
  }

  /** The client is gone: its in-flight publishes wait again, to be re-sent from the first unacknowledged event. */
  reset(): void {
    this.pause();
    this.generation++;
    this.queue.releaseAll();
  }

  get inFlight(): number {
    return this.queue.inFlight;
  }

  pump(): void {
    if (this.link.kind !== 'live') return;
    const { send } = this.link;
    const gen = this.generation;
    for (const ev of this.queue.take(this.window - this.queue.inFlight)) {
      let sent: Promise<unknown>;
      try {
        sent = Promise.resolve(send(ev));
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.then(
        () => this.settle(gen, ev, undefined),
        (err: unknown) => this.settle(gen, ev, err ?? new Error('publish failed')),
      );
    }
  }

  /** Resolves once the queue is empty (every event acknowledged, dropped or refused). */
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

  /** The outcome of one publish: settle it in the queue first, so the slot is freed whatever throws next. */
  private settle(gen: number, ev: EventPayload, err: unknown): void {
    // A publish of a client reset() gave up: the event already waits again.
    if (gen !== this.generation) return;
    if (err === undefined) this.queue.ack(ev.seq);
    else if (isRefusal(err)) {
      this.queue.refuse(ev.seq);
      this.guard('the refused-event callback', () => this.onRefused(ev, err));
    } else {
      this.queue.release(ev.seq);
      this.log.debug({ seq: ev.seq, err: String(err) }, 'publish dropped by the client; re-sending it');
      this.hold();
    }
    this.guard('the event pump', () => this.pump());
    if (this.queue.depth === 0) for (const w of [...this.idleWaiters]) this.guard('an idle waiter', w);
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, `${what} threw; delivery carries on`);
    }
  }

  /** Stop taking events for retryMs: the publish that just failed goes again after that (or on resume). */
  private hold(): void {
    if (this.link.kind !== 'live') return;
    const { send } = this.link;
    const timer = this.clock.setTimeout(() => {
      if (this.link.kind !== 'holding' || this.link.timer !== timer) return;
      this.link = { kind: 'live', send };
      this.pump();
    }, this.retryMs);
    this.link = { kind: 'holding', send, timer };
  }

  private unhold(): void {
    if (this.link.kind === 'holding') this.clock.clearTimeout(this.link.timer);
  }
}
