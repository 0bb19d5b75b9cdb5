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
import { type Discovery, startDiscovery } from './discovery.js';
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

export type Publisher = ReturnType<typeof createPublisher>;

export function createPublisher(options: PublisherOptions) {
  const clock: Clock = options.clock ?? systemClock;
  const log = options.log ?? silentLogger();
  const client: AgentClient = createClient({ ...options, clock, log });
  const topics: AgentTopics = agentTopics(options.agent);
  const session = options.session;
  const retained = new RetainedState(client, log.child({ module: 'mqtt' }));
  const targets = new Map<string, TargetSnapshot>();
  let delivery: EventDelivery | undefined;
  let discovery: Discovery | undefined;
  let healthDepth = 0;

  function on(event: 'connect', fn: (...a: PublisherEvents['connect']) => void): () => void;
  function on(event: 'disconnect', fn: () => void): () => void;
  function on(event: 'error', fn: (err: ReplugError) => void): () => void;
  function on(event: keyof PublisherEvents, fn: (arg: never) => void): () => void {
    const f = fn as (arg?: unknown) => void;
    if (event === 'connect')
      return client.on('up', (u) => f({ protocolVersion: u.protocol, reconnect: u.reconnect }));
    if (event === 'disconnect') return client.on('down', () => f());
    return client.on('problem', (err) => f(err));
  }

  retained.put(topics.status, () =>
    buildStatus('online', session, clock.now(), options.version ? { version: options.version } : {}),
  );

  const publisher = {
    topics,
    client,
    retained,
    on,
    /** Opens the durable queue and starts connecting; never waits for the network (events queue meanwhile). */
    async start(): Promise<void> {
      delivery = EventDelivery.open(client, {
        stateDir: options.stateDir,
        topic: topics.event,
        session,
        clock,
        ...(options.queueCapacity !== undefined ? { capacity: options.queueCapacity } : {}),
        ...(options.window !== undefined ? { window: options.window } : {}),
      });
      if (options.homeassistant) publisher.startDiscovery(options.homeassistant);
      client.start();
    },
    /** The queue and pump; undefined before start(). */
    get delivery(): EventDelivery | undefined {
      return delivery;
    },
    /** Resolves on the next (or current) successful connect. */
    connected(timeoutMs = 10_000): Promise<void> {
      if (client.isUp) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = clock.setTimeout(() => {
          off();
          reject(
            new ReplugError(
              ErrorCodes.MQTT_CONNECT,
              `no connect to ${client.redacted} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const off = client.on('up', () => {
          clock.clearTimeout(timer);
          off();
          resolve();
        });
      });
    },
    /** Resolves once every queued event was acknowledged (or dropped). */
    idle(timeoutMs = 10_000): Promise<void> {
      return delivery ? delivery.idle(timeoutMs) : Promise.resolve();
    },
    /** Queues one event (durably, before returning) and returns it as published, with its seq. */
    publishEvent<K extends EventType>(type: K, data: EventData<K>): EventPayload {
      if (!delivery) throw new ReplugError(ErrorCodes.INTERNAL, 'publisher not started');
      return delivery.push(type, data);
    },
    setInfo(value: Omit<InfoPayload, 'session' | 'ts'>): void {
      retained.put(topics.info, () =>
        buildInfo(
          { ...value, broker: { ...value.broker, protocolVersion: client.protocol } },
          session,
          clock.now(),
        ),
      );
    },
    setDevices(list: readonly UsbDevice[]): void {
      const devices = [...list];
      retained.put(topics.devices, () => buildDevices(devices, session, clock.now()));
    },
    /** Retained target/<key>/state; the key is derived from the snapshot's vid, pid and serial. */
    setTargetState(snapshot: TargetSnapshot): void {
      const key = targetTopicKey(snapshot);
      const isNew = !targets.has(key);
      targets.set(key, snapshot);
      retained.put(topics.target(key), () => buildTargetState(snapshot, session, clock.now()));
      if (isNew) discovery?.refresh();
    },
    /** Empties a target's retained state on the broker (a target no longer configured, issue 10). */
    clearTargetState(key: string): Promise<void> {
      targets.delete(key);
      return retained.clear(topics.target(key));
    },
    setHealth(value: HealthInput): void {
      retained.put(topics.health, () => {
        const queue = delivery?.stats() ?? {
          depth: 0,
          dropped: 0,
          capacity: options.queueCapacity ?? 10_000,
        };
        healthDepth = queue.depth;
        return buildHealth(
          value,
          queue,
          { connected: client.isUp, reconnects: client.reconnects },
          session,
          clock.now(),
        );
      });
    },
    /** The queue depth in the last health payload built (what the broker's retained health says). */
    shownHealthDepth(): number {
      return healthDepth;
    },
    /** Home Assistant device discovery for this agent's targets; `removed` components go as `{p}`. */
    startDiscovery(ha: HomeAssistantOptions, removed: () => Record<string, string> = () => ({})): Discovery {
      discovery ??= startDiscovery(
        client,
        ha,
        { agent: options.agent, version: options.version },
        {
          targets: () => [...targets.values()],
          removed,
        },
      );
      return discovery;
    },
    stats() {
      return {
        queue: delivery?.stats(),
        broker: { connected: client.isUp, reconnects: client.reconnects },
        protocolVersion: client.protocol,
      };
    },
    get isConnected(): boolean {
      return client.isUp;
    },
    get protocolVersion(): ProtocolVersion {
      return client.protocol;
    },
    get mqttClient() {
      return client.raw;
    },
    /** Publishes a retained `offline` with reason `stopped` (observers need not wait for a will), disconnects, closes the queue. */
    async stop(boundMs = 2000): Promise<void> {
      const bye = buildStatus('offline', session, clock.now(), { reason: 'stopped' });
      discovery?.stop();
      retained.close();
      await client.stop({ topic: topics.status, payload: encodePayload(bye) }, boundMs);
      delivery?.close();
    },
  };
  return publisher;
}
