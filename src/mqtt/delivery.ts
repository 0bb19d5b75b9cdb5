/**
 * Event delivery: the durable queue (queue.ts) and the pump (pump.ts) behind one face, driven by the
 * client's state. Connected: the pump sends QoS 1 events through the client, at most `window` in flight,
 * each acknowledged in the queue on its PUBACK. Down: it pauses; MQTT.js replays what was in flight before
 * `connect` (client.ts). A negative PUBACK (MQTT 5 reason >= 0x80) cannot succeed on a re-send: the pump
 * takes the event off the queue and the client reports the reason once.
 */
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';
import { Listeners } from '../util/listeners.js';
import type { AgentClient } from './client.js';
import {
  type EventData,
  type EventPayload,
  type EventType,
  encodePayload,
  eventDraft,
  type QueueStats,
} from './payloads.js';
import { EventPump } from './pump.js';
import { DurableQueue } from './queue.js';
import { pubackReason } from './reason-codes.js';

export interface DeliveryOptions {
  /** The agent's --state-dir: the durable event queue lives here. */
  stateDir: string;
  /** Event topic (replug/<agent>/event). */
  topic: string;
  /** Boot counter stamped on every event. */
  session: number;
  clock: Clock;
  /** The queue says here when its disk fails and recovers, and what it skipped at start. */
  log?: Logger;
  capacity?: number;
  /** Events in flight awaiting PUBACK. Below Mosquitto's default receive maximum (20). Default 16. */
  window?: number;
}

type Client = Pick<AgentClient, 'on' | 'publish' | 'isUp' | 'refusedPublish'>;

export interface DeliveryEvents {
  /** The backlog just reached zero while connected (issue 10: health shows the drained queue). */
  drained: [];
}

export class EventDelivery {
  private readonly listeners = new Listeners<DeliveryEvents>();
  private readonly offs: (() => void)[] = [];

  private constructor(
    private readonly queue: DurableQueue,
    private readonly pump: EventPump,
    private readonly client: Client,
    private readonly options: DeliveryOptions,
  ) {}

  /** Opens the queue (created when missing; STATE_DIR error when unusable) and follows the client. */
  static async open(client: Client, options: DeliveryOptions): Promise<EventDelivery> {
    const queue = await DurableQueue.open({
      dir: options.stateDir,
      clock: options.clock,
      capacity: options.capacity,
      ...(options.log ? { log: options.log } : {}),
    });
    let self: EventDelivery | undefined;
    const pump = new EventPump(
      queue,
      options.clock,
      options.window ?? 16,
      (ev, err) => self?.refused(ev, err),
      options.log ? { log: options.log.child({ module: 'mqtt' }) } : {},
    );
    self = new EventDelivery(queue, pump, client, options);
    self.offs.push(
      queue.onPush(() => pump.pump()),
      client.on('up', () => self?.resume()),
      client.on('down', () => pump.pause()),
    );
    if (client.isUp) self.resume();
    return self;
  }

  on = <K extends keyof DeliveryEvents>(event: K, fn: (...args: DeliveryEvents[K]) => void) =>
    this.listeners.on(event, fn);

  /** Queues one event (durably, before returning) and returns it as published, with its seq. */
  push<K extends EventType>(type: K, data: EventData<K>): EventPayload {
    return this.queue.push(eventDraft(type, data, this.options.clock.now()), this.options.session);
  }

  /** Resolves once every queued event was acknowledged (or dropped). */
  idle(timeoutMs = 10_000): Promise<void> {
    return this.pump.idle(timeoutMs);
  }

  get depth(): number {
    return this.queue.depth;
  }

  stats(): QueueStats {
    return this.queue.stats();
  }

  /** Stops sending and closes the queue (its final sync and seq mark included). */
  async close(): Promise<void> {
    for (const off of this.offs.splice(0)) off();
    this.pump.reset();
    this.listeners.clear();
    await this.queue.close();
  }

  private resume(): void {
    const { topic } = this.options;
    this.pump.resume((ev) => {
      const sent = this.client.publish(topic, encodePayload(ev), { retain: false, event: true });
      // The pump acks the event in its own reaction to `sent`, registered right after this returns: a
      // check queued from our earlier reaction runs after it (reactions run in order, microtasks FIFO), so
      // it sees the depth after the ack.
      sent.then(
        () => queueMicrotask(() => this.afterAck()),
        () => undefined,
      );
      return sent;
    });
  }

  private afterAck(): void {
    if (this.queue.depth === 0 && this.client.isUp) this.listeners.emit('drained');
  }

  private refused(ev: EventPayload, err: Error & { code?: unknown }): void {
    // The pump has taken the event off the queue (counted as refused) before calling this.
    const code = typeof err.code === 'number' ? err.code : 0x80;
    this.client.refusedPublish(`event ${ev.seq}`, pubackReason(code));
    queueMicrotask(() => this.afterAck());
  }
}
