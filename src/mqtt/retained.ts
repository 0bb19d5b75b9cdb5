/**
 * The retained-state cache: what the agent says about itself on retained topics (status, info, devices,
 * target states, health). Each topic holds a builder, called at publish time so `ts` and live figures are
 * fresh; everything is re-published, in the order it was first put, on every (re)connect (the zigbee2mqtt
 * habit: retained availability re-sent on connect). While the broker is away nothing is sent: the next
 * connect sends the latest state, so nothing stale piles up.
 *
 * `clear(topic)` removes a retained message from the broker (an empty retained payload, MQTT 3.1.1
 * §3.3.1.3) and keeps trying on every connect until the broker acknowledged it.
 */
import type { Logger } from '../log.js';
import type { AgentClient } from './client.js';
import { encodePayload } from './payloads.js';
import { pubackReason } from './reason-codes.js';

type Client = Pick<AgentClient, 'isUp' | 'publish' | 'on' | 'refusedPublish'>;

export class RetainedState {
  private readonly builders = new Map<string, () => unknown>();
  private readonly clearing = new Map<string, { done: Promise<void>; resolve: () => void }>();
  /** Builders that threw, by topic: logged once until they work again. */
  private readonly failing = new Set<string>();
  /** Topics the broker has acknowledged a publish of since they were put. */
  private readonly confirmed = new Set<string>();
  private readonly confirming = new Map<string, Set<() => void>>();
  private readonly off: () => void;

  constructor(
    private readonly client: Client,
    private readonly log: Logger,
  ) {
    this.off = client.on('up', () => this.republish());
  }

  /** Sets (or replaces) what `topic` says, and sends it now when connected. */
  put(topic: string, build: () => unknown): void {
    this.builders.set(topic, build);
    this.confirmed.delete(topic);
    this.clearing.get(topic)?.resolve(); // a topic given state again is no longer to be cleared
    this.clearing.delete(topic);
    this.send(topic);
  }

  /** Sends `topic` again now (when connected), e.g. health once the event backlog is gone. */
  refresh(topic: string): void {
    if (this.builders.has(topic)) this.send(topic);
  }

  /**
   * Resolves once the broker has acknowledged a publish of `topic` since it was put (at once if it has
   * already): the agent starts its USB side after `online` is in (src/agent/agent.ts). Never rejects; a
   * caller that cannot wait for the broker bounds the wait itself.
   */
  acknowledged(topic: string): Promise<void> {
    if (this.confirmed.has(topic)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.confirming.get(topic) ?? new Set<() => void>();
      this.confirming.set(topic, waiting);
      waiting.add(resolve);
    });
  }

  has(topic: string): boolean {
    return this.builders.has(topic);
  }

  /** What `topic` says now (its builder's value), for readers inside the agent (the metrics feature). */
  peek(topic: string): unknown {
    return this.builders.get(topic)?.();
  }

  topics(): string[] {
    return [...this.builders.keys()];
  }

  /** Forgets `topic` and empties it on the broker; resolves once the broker acknowledged the removal. */
  clear(topic: string): Promise<void> {
    this.builders.delete(topic);
    const pending = this.clearing.get(topic);
    if (pending) return pending.done;
    let resolve = () => {};
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    this.clearing.set(topic, { done, resolve });
    this.sendClear(topic);
    return done;
  }

  /** Everything, in first-put order, then the pending removals. */
  republish(): void {
    for (const topic of this.builders.keys()) this.send(topic);
    for (const topic of this.clearing.keys()) this.sendClear(topic);
  }

  close(): void {
    this.off();
    this.confirming.clear();
  }

  private confirm(topic: string, build: () => unknown): void {
    if (this.builders.get(topic) !== build) return; // put again meanwhile: that publish confirms
    this.confirmed.add(topic);
    const waiting = this.confirming.get(topic);
    this.confirming.delete(topic);
    for (const resolve of waiting ?? []) resolve();
  }

  private send(topic: string): void {
    if (!this.client.isUp) return;
    const build = this.builders.get(topic);
    if (!build) return;
    let payload: string;
    try {
      payload = encodePayload(build());
      this.failing.delete(topic);
    } catch (err) {
      if (!this.failing.has(topic))
        this.log.error({ err, topic }, 'could not build a retained payload; kept trying');
      this.failing.add(topic);
      return;
    }
    this.client.publish(topic, payload, { retain: true }).then(
      () => this.confirm(topic, build),
      (err: Error & { code?: unknown }) => {
        if (typeof err.code === 'number' && err.code >= 0x80)
          this.client.refusedPublish(`the retained ${topic}`, pubackReason(err.code));
        else
          this.log.debug(
            { topic, err: err.message },
            'retained publish not acknowledged; re-sent on next connect',
          );
      },
    );
  }

  private sendClear(topic: string): void {
    if (!this.client.isUp) return;
    this.client.publish(topic, '', { retain: true }).then(
      () => {
        this.clearing.get(topic)?.resolve();
        this.clearing.delete(topic);
      },
      () => undefined, // re-sent on the next connect
    );
  }
}
