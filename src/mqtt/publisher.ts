/**
 * The agent's MQTT face: the client (client.ts: connection as a union, LWT, protocol fall back, outage
 * lines), the retained-state cache (retained.ts: re-published on every connect) and event delivery
 * (delivery.ts: durable queue + pump), composed, with one typed setter per topic so payloads are built in
 * one place (payloads.ts). The agent's features talk to this; they never see MQTT.js.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import { silentLogger } from '../log.js';
import { targetTopicKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import { type AgentClient, type ClientOptions, createClient } from './client.js';
import type { ProtocolVersion } from './connect.js';
import { EventDelivery } from './delivery.js';
import { type Discovery, type DiscoveryTarget, startDiscovery } from './discovery.js';
import type { HomeAssistantOptions } from './homeassistant.js';
import {
  buildDevices,
  buildHealth,
  buildInfo,
  buildStatus,
  buildTargetState,
  type EventData,
  type EventPayload,
  type EventType,
  encodePayload,
  type HealthInput,
  type InfoPayload,
  type TargetSnapshot,
} from './payloads.js';
import { RetainedState } from './retained.js';
import { type AgentTopics, agentTopics } from './topics.js';

export interface PublisherOptions extends ClientOptions {
  /** The agent's --state-dir: the durable event queue lives here. */
  stateDir: string;
  queueCapacity?: number;
  /** Events in flight awaiting PUBACK. Default 16. */
  window?: number;
  /** Home Assistant discovery (also startable later with startDiscovery). */
  homeassistant?: HomeAssistantOptions;
}

export interface PublisherEvents {
  connect: [{ protocolVersion: ProtocolVersion; reconnect: boolean }];
  disconnect: [];
  /** Reported once per distinct code until the next successful connect (MQTT_AUTH, MQTT_REFUSED). */
  error: [ReplugError];
}

export function createPublisher(options: PublisherOptions): Publisher {
  return new Publisher(options);
}

export class Publisher {
  readonly topics: AgentTopics;
  readonly client: AgentClient;
  readonly retained: RetainedState;
  private readonly clock: Clock;
  private readonly session: number;
  private readonly targets = new Map<string, TargetSnapshot>();
  private events: EventDelivery | undefined;
  private discovery: Discovery | undefined;
  private healthDepth = 0;

  constructor(private readonly options: PublisherOptions) {
    this.clock = options.clock ?? systemClock;
    const log = options.log ?? silentLogger();
    this.client = createClient({ ...options, clock: this.clock, log });
    this.topics = agentTopics(options.agent);
    this.session = options.session;
    this.retained = new RetainedState(this.client, log.child({ module: 'mqtt' }));
    this.retained.put(this.topics.status, () =>
      buildStatus(
        'online',
        this.session,
        this.clock.now(),
        options.version ? { version: options.version } : {},
      ),
    );
  }

  on(event: 'connect', fn: (...a: PublisherEvents['connect']) => void): () => void;
  on(event: 'disconnect', fn: () => void): () => void;
  on(event: 'error', fn: (err: ReplugError) => void): () => void;
  on(event: keyof PublisherEvents, fn: (arg: never) => void): () => void {
    const f = fn as (arg?: unknown) => void;
    if (event === 'connect')
      return this.client.on('up', (u) => f({ protocolVersion: u.protocol, reconnect: u.reconnect }));
    if (event === 'disconnect') return this.client.on('down', () => f());
    return this.client.on('problem', (err) => f(err));
  }

  /** Opens the durable queue and starts connecting; never waits for the network (events queue meanwhile). */
  async start(): Promise<void> {
    const o = this.options;
    this.events = await EventDelivery.open(this.client, {
      stateDir: o.stateDir,
      log: o.log ?? silentLogger(),
      topic: this.topics.event,
      session: this.session,
      clock: this.clock,
      ...(o.queueCapacity !== undefined ? { capacity: o.queueCapacity } : {}),
      ...(o.window !== undefined ? { window: o.window } : {}),
    });
    if (o.homeassistant) this.startDiscovery(o.homeassistant);
    this.client.start();
  }

  /** The queue and pump; undefined before start(). */
  get delivery(): EventDelivery | undefined {
    return this.events;
  }

  /** Resolves on the next (or current) successful connect. */
  connected(timeoutMs = 10_000): Promise<void> {
    if (this.client.isUp) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        off();
        reject(
          new ReplugError(
            ErrorCodes.MQTT_CONNECT,
            `no connect to ${this.client.redacted} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const off = this.client.on('up', () => {
        this.clock.clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Resolves once every queued event was acknowledged (or dropped). */
  idle(timeoutMs = 10_000): Promise<void> {
    return this.events ? this.events.idle(timeoutMs) : Promise.resolve();
  }

  /** Queues one event (durably, before returning) and returns it as published, with its seq. */
  publishEvent<K extends EventType>(type: K, data: EventData<K>): EventPayload {
    if (!this.events) throw new ReplugError(ErrorCodes.INTERNAL, 'publisher not started');
    return this.events.push(type, data);
  }

  setInfo(value: Omit<InfoPayload, 'session' | 'ts'>): void {
    this.retained.put(this.topics.info, () =>
      buildInfo(
        { ...value, broker: { ...value.broker, protocolVersion: this.client.protocol } },
        this.session,
        this.clock.now(),
      ),
    );
  }

  setDevices(list: readonly UsbDevice[]): void {
    const devices = [...list];
    this.retained.put(this.topics.devices, () => buildDevices(devices, this.session, this.clock.now()));
  }

  /** Retained target/<key>/state; the key is derived from the snapshot's vid, pid and serial. */
  setTargetState(snapshot: TargetSnapshot): void {
    const key = targetTopicKey(snapshot);
    const isNew = !this.targets.has(key);
    this.targets.set(key, snapshot);
    this.retained.put(this.topics.target(key), () =>
      buildTargetState(snapshot, this.session, this.clock.now()),
    );
    if (isNew) this.discovery?.refresh();
  }

  /** Empties a target's retained state on the broker (a target no longer configured, issue 10). */
  clearTargetState(key: string): Promise<void> {
    this.targets.delete(key);
    return this.retained.clear(this.topics.target(key));
  }

  setHealth(value: HealthInput): void {
    this.retained.put(this.topics.health, () => {
      const queue = this.events?.stats() ?? {
        depth: 0,
        dropped: 0,
        capacity: this.options.queueCapacity ?? 10_000,
      };
      this.healthDepth = queue.depth;
      const broker = { connected: this.client.isUp, reconnects: this.client.reconnects };
      return buildHealth(value, queue, broker, this.session, this.clock.now());
    });
  }

  /** The queue depth in the last health payload built (what the broker's retained health says). */
  shownHealthDepth(): number {
    return this.healthDepth;
  }

  /**
   * Home Assistant device discovery for this agent's targets; `removed` components go as `{p}`.
   * `targets`: what the config announces. The agent passes its configured targets: the states published so
   * far (the default) are empty until the sessions start, and a config sent on the first connect, before
   * that, told HA of the removals without naming the kept targets.
   */
  startDiscovery(
    ha: HomeAssistantOptions,
    removed: () => Record<string, string> = () => ({}),
    targets: () => DiscoveryTarget[] = () => [...this.targets.values()],
  ): Discovery {
    this.discovery ??= startDiscovery(
      this.client,
      ha,
      { agent: this.options.agent, version: this.options.version },
      { targets, removed },
    );
    return this.discovery;
  }

  stats() {
    return {
      queue: this.events?.stats(),
      broker: { connected: this.client.isUp, reconnects: this.client.reconnects },
      protocolVersion: this.client.protocol,
    };
  }

  get isConnected(): boolean {
    return this.client.isUp;
  }

  get protocolVersion(): ProtocolVersion {
    return this.client.protocol;
  }

  get mqttClient() {
    return this.client.raw;
  }

  /** Publishes a retained `offline` with reason `stopped` (observers need not wait for a will), disconnects, closes the queue. */
  async stop(boundMs = 2000): Promise<void> {
    const bye = buildStatus('offline', this.session, this.clock.now(), { reason: 'stopped' });
    this.discovery?.stop();
    this.retained.close();
    await this.client.stop({ topic: this.topics.status, payload: encodePayload(bye) }, boundMs);
    await this.events?.close();
  }
}
