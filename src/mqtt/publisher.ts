/**
 * The agent's MQTT side (one wrapper per library, the zigbee2mqtt `lib/mqtt.ts` habit): retained state
 * re-published on every (re)connect, events through the durable queue with QoS 1, the LWT, MQTT 5 with an
 * automatic fall back to 3.1.1.
 *
 * Delivery: at most `window` events are in flight. An event leaves the queue only on its PUBACK. While
 * the connection is down, MQTT.js keeps the in-flight PUBLISHes in its outgoing store and replays them, in
 * order, before it emits `connect` (client.ts _onConnect); the publisher resumes after that, so the
 * broker sees seq in order. If the client itself goes away (stop, protocol fall back) its pending publishes
 * reject, and the publisher re-sends from the first unacknowledged event of the durable queue.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { targetTopicKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import {
  buildClientOptions,
  type ConnectSettings,
  isAuthFailure,
  isUnsupportedProtocol,
  type ProtocolVersion,
  parseBrokerUrl,
  userProperties,
} from './connect.js';
import { buildDiscovery, type HomeAssistantOptions, haStatusTopic } from './homeassistant.js';
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
  eventDraft,
  type HealthInput,
  type InfoPayload,
  type TargetSnapshot,
} from './payloads.js';
import { EventPump } from './pump.js';
import { DurableQueue } from './queue.js';
import { type AgentTopics, agentTopics } from './topics.js';

export interface PublisherOptions extends ConnectSettings {
  /** The agent's --state-dir: the durable event queue lives here. */
  stateDir: string;
  /** 'auto' (default): MQTT 5, falling back to 3.1.1 when the broker refuses it. */
  protocol?: 'auto' | ProtocolVersion;
  queueCapacity?: number;
  /** Events in flight awaiting PUBACK. Below Mosquitto's default receive maximum (20). Default 16. */
  window?: number;
  /** MQTT 5 message expiry on events (s): a day-old replug is not worth delivering. Default 86 400. */
  eventExpiryS?: number;
  homeassistant?: HomeAssistantOptions;
  clock?: Clock;
  log?: Logger;
}

export interface PublisherEvents {
  connect: [{ protocolVersion: ProtocolVersion; reconnect: boolean }];
  disconnect: [];
  /** Reported once per distinct code until the next successful connect (MQTT_AUTH, MQTT_CONNECT). */
  error: [ReplugError];
}

export type Publisher = ReturnType<typeof createPublisher>;

export function createPublisher(options: PublisherOptions) {
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger()).child({ module: 'mqtt' });
  const topics: AgentTopics = agentTopics(options.agent);
  const { redacted, href } = parseBrokerUrl(options.url);
  // Validates the TLS files and URL now: a bad setting is one line at start, not a retry loop.
  buildClientOptions(options, 5, clock.now());
  const emitter = new EventEmitter<PublisherEvents>();
  const props = userProperties(options);

  let queue: DurableQueue | undefined;
  let client: MqttClient | undefined;
  let generation = 0;
  let protocolVersion: ProtocolVersion = options.protocol === 4 ? 4 : 5;
  let connected = false;
  let everConnected = false;
  let reconnects = 0;
  let lostAt: number | undefined;
  let stopped = false;
  let pump: EventPump | undefined;
  const reported = new Set<string>();

  let info: Omit<InfoPayload, 'session' | 'ts'> | undefined;
  let devices: UsbDevice[] | undefined;
  let health: HealthInput | undefined;
  const targets = new Map<string, TargetSnapshot>();
  const ha = options.homeassistant;

  function publishOptions(retain: boolean, event = false): IClientPublishOptions {
    if (protocolVersion !== 5) return { qos: 1, retain };
    return {
      qos: 1,
      retain,
      properties: {
        contentType: 'application/json',
        userProperties: props,
        ...(event ? { messageExpiryInterval: options.eventExpiryS ?? 86_400 } : {}),
      },
    };
  }

  /** Retained state: best effort while connected; the next connect re-publishes it anyway. */
  function publishState(topic: string, payload: unknown): void {
    if (!client || !connected) return;
    client.publishAsync(topic, encodePayload(payload), publishOptions(true)).catch((err: Error) => {
      log.debug({ topic, err: err.message }, 'retained publish not acknowledged; re-sent on next connect');
    });
  }

  function healthPayload(): unknown {
    return health
      ? buildHealth(
          health,
          queue?.stats() ?? { depth: 0, dropped: 0, capacity: 1 },
          { connected, reconnects },
          options.session,
          clock.now(),
        )
      : undefined;
  }

  function publishAllState(): void {
    const now = clock.now();
    publishState(
      topics.status,
      buildStatus('online', options.session, now, options.version ? { version: options.version } : {}),
    );
    if (info)
      publishState(
        topics.info,
        buildInfo({ ...info, broker: { ...info.broker, protocolVersion } }, options.session, now),
      );
    if (devices) publishState(topics.devices, buildDevices(devices, options.session, now));
    for (const [key, snap] of targets)
      publishState(topics.target(key), buildTargetState(snap, options.session, now));
    const h = healthPayload();
    if (h) publishState(topics.health, h);
    publishDiscovery();
  }

  /** HA discovery is not retained: HA's birth message (`online` on <prefix>/status) asks for it again. */
  function publishDiscovery(): void {
    if (!ha || !client || !connected) return;
    const refs = [...targets.values()];
    const m = buildDiscovery(ha, { agent: options.agent, version: options.version }, refs);
    client
      .publishAsync(m.topic, encodePayload(m.payload), { ...publishOptions(false), retain: false })
      .catch(() => undefined);
  }

  function report(err: ReplugError): void {
    const key = `${err.code}:${String(err.details?.reasonCode ?? '')}`;
    if (reported.has(key)) return;
    reported.add(key);
    log.error({ code: err.code, ...err.details }, `${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    emitter.emit('error', err);
  }

  function connectClient(): void {
    const gen = ++generation;
    pump?.reset();
    const c = mqtt.connect(href, buildClientOptions(options, protocolVersion, clock.now()));
    client = c;
    c.on('connect', () => {
      if (gen !== generation) return;
      connected = true;
      reported.clear();
      const reconnect = everConnected;
      if (reconnect) reconnects++;
      everConnected = true;
      if (lostAt !== undefined) {
        log.info(
          { downMs: clock.now() - lostAt, queued: queue?.depth },
          `broker ${redacted} is back; delivering queued events`,
        );
      } else if (!reconnect) {
        log.info(
          { protocolVersion },
          `connected to broker ${redacted} (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`,
        );
      }
      lostAt = undefined;
      if (ha) c.subscribeAsync(haStatusTopic(ha), { qos: 1 }).catch(() => undefined);
      publishAllState();
      pump?.resume((ev) => c.publishAsync(topics.event, encodePayload(ev), publishOptions(false, true)));
      emitter.emit('connect', { protocolVersion, reconnect });
    });
    c.on('message', (topic, payload) => {
      if (ha && topic === haStatusTopic(ha) && payload.toString('utf8').trim() === 'online')
        publishDiscovery();
    });
    c.on('close', () => {
      if (gen !== generation) return;
      pump?.pause();
      if (connected) emitter.emit('disconnect');
      if (lostAt === undefined && !stopped) {
        lostAt = clock.now();
        // Logged once per outage, not per retry (issue 3).
        log.warn(
          { queued: queue?.depth },
          `${everConnected ? 'lost the broker' : 'cannot reach the broker'} ${redacted}; queueing events and retrying`,
        );
      }
      connected = false;
    });
    c.on('error', (err: Error & { code?: unknown }) => {
      if (gen !== generation) return;
      if (protocolVersion === 5 && options.protocol !== 5 && isUnsupportedProtocol(err.code)) {
        log.info(`broker ${redacted} does not speak MQTT 5; using 3.1.1`);
        protocolVersion = 4;
        c.end(true);
        connectClient();
      } else if (isAuthFailure(err.code)) {
        report(
          new ReplugError(
            ErrorCodes.MQTT_AUTH,
            `broker ${redacted} refused the credentials: ${err.message}`,
            {
              hint: 'check -u/--username and -P/--password (or REPLUG_MQTT_USERNAME/REPLUG_MQTT_PASSWORD) and the broker ACL; retrying',
              details: { reasonCode: err.code },
            },
          ),
        );
      } else {
        log.debug({ err: err.message, code: err.code }, 'mqtt connection error');
      }
    });
  }

  const publisher = {
    topics,
    on: emitter.on.bind(emitter),
    off: emitter.off.bind(emitter),
    /** Opens the durable queue and starts connecting; never waits for the network (events queue meanwhile). */
    async start(): Promise<void> {
      queue = DurableQueue.open({ dir: options.stateDir, clock, capacity: options.queueCapacity });
      pump = new EventPump(queue, clock, options.window ?? 16, (ev, err) =>
        report(
          new ReplugError(ErrorCodes.MQTT_AUTH, `broker refused event ${ev.seq}: ${err.message}`, {
            details: { reasonCode: err.code },
          }),
        ),
      );
      const p = pump;
      queue.onPush(() => p.pump());
      connectClient();
    },
    /** Resolves on the next (or current) successful connect. */
    connected(timeoutMs = 10_000): Promise<void> {
      if (connected) return Promise.resolve();
      return waitFor('connect', timeoutMs, `connect to ${redacted}`);
    },
    /** Resolves once every queued event was acknowledged (or dropped). */
    idle(timeoutMs = 10_000): Promise<void> {
      return pump ? pump.idle(timeoutMs) : Promise.resolve();
    },
    /** Queues one event (durably, before returning) and returns it as published, with its seq. */
    publishEvent<K extends EventType>(type: K, data: EventData<K>): EventPayload {
      if (!queue) throw new ReplugError(ErrorCodes.INTERNAL, 'publisher not started');
      return queue.push(eventDraft(type, data, clock.now()), options.session);
    },
    setInfo(value: Omit<InfoPayload, 'session' | 'ts'>): void {
      info = value;
      publishState(
        topics.info,
        buildInfo({ ...value, broker: { ...value.broker, protocolVersion } }, options.session, clock.now()),
      );
    },
    setDevices(list: readonly UsbDevice[]): void {
      devices = [...list];
      publishState(topics.devices, buildDevices(devices, options.session, clock.now()));
    },
    /** Retained target/<key>/state; the key is derived from the snapshot's vid, pid and serial. */
    setTargetState(snapshot: TargetSnapshot): void {
      const key = targetTopicKey(snapshot);
      const isNew = !targets.has(key);
      targets.set(key, snapshot);
      if (isNew) publishDiscovery();
      publishState(topics.target(key), buildTargetState(snapshot, options.session, clock.now()));
    },
    setHealth(value: HealthInput): void {
      health = value;
      publishState(topics.health, healthPayload());
    },
    stats() {
      return { queue: queue?.stats(), broker: { connected, reconnects }, protocolVersion };
    },
    get isConnected(): boolean {
      return connected;
    },
    get protocolVersion(): ProtocolVersion {
      return protocolVersion;
    },
    /** The live MQTT.js client, for diagnostics and tests (e.g. destroying the stream to fire the will). */
    get mqttClient(): MqttClient | undefined {
      return client;
    },
    /** Publishes a retained `offline` with reason `stopped` (so observers need not wait for a will), disconnects, closes the queue. */
    async stop(timeoutMs = 2000): Promise<void> {
      if (stopped) return;
      stopped = true;
      const c = client;
      if (c && connected) {
        const bye = buildStatus('offline', options.session, clock.now(), { reason: 'stopped' });
        await Promise.race([
          c.publishAsync(topics.status, encodePayload(bye), publishOptions(true)).catch(() => undefined),
          new Promise((r) => setTimeout(r, timeoutMs)),
        ]);
      }
      generation++;
      pump?.reset();
      connected = false;
      if (c) await c.endAsync(!c.connected);
      queue?.close();
      emitter.removeAllListeners();
    },
  };

  function waitFor(event: 'connect', timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        emitter.off(event, onEvent);
        reject(new ReplugError(ErrorCodes.MQTT_CONNECT, `no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onEvent = () => {
        clearTimeout(timer);
        resolve();
      };
      emitter.once(event, onEvent);
    });
  }
  return publisher;
}
