/**
 * The agent's MQTT client (one wrapper per library, the zigbee2mqtt `lib/mqtt.ts` habit): connects with
 * the LWT, falls back from MQTT 5 to 3.1.1 when the broker refuses 5, keeps its state as a union
 * (connection.ts), logs one line per outage with the TLS reason when there is one, and reports refusals
 * once per distinct reason until the next successful connect.
 *
 * Refusals go to `problem` listeners, never to an EventEmitter 'error' event: with no listener, `emit
 * ('error')` throws, and it threw inside MQTT.js's CONNACK handler (refused credentials) and on the
 * negative-PUBACK path, where it skipped the pump's done() (issue 12).
 */
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { ReplugError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { type Clock, systemClock } from '../util/clock.js';
import { Listeners } from '../util/listeners.js';
import {
  buildClientOptions,
  type ConnectSettings,
  isUnsupportedProtocol,
  type ProtocolVersion,
  userProperties,
} from './connect.js';
import {
  type ConnectionEvent,
  type ConnectionState,
  connectionStep,
  initialConnection,
  tlsProblem,
} from './connection.js';
import { connackReason, errorCodeFor, hex, type Reason } from './reason-codes.js';
import { parseBrokerUrl } from './url.js';

export interface ClientOptions extends ConnectSettings {
  /** 'auto' (default): MQTT 5, falling back to 3.1.1 when the broker refuses it. */
  protocol?: 'auto' | ProtocolVersion;
  /** MQTT 5 message expiry on events (s): a day-old replug is not worth delivering. Default 86 400. */
  eventExpiryS?: number;
  clock?: Clock;
  log?: Logger;
}

export interface PublishAs {
  retain: boolean;
  /** An event: MQTT 5 message expiry applies. */
  event?: boolean;
}

export interface ClientEvents {
  up: [{ protocol: ProtocolVersion; reconnect: boolean }];
  down: [];
  /** A refusal (credentials, ACL, quota...), once per distinct code and reason until the next connect. */
  problem: [ReplugError];
  message: [topic: string, payload: Buffer];
}

export type AgentClient = ReturnType<typeof createClient>;

export function createClient(options: ClientOptions) {
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger()).child({ module: 'mqtt' });
  const { redacted, href } = parseBrokerUrl(options.url);
  // Validates the TLS files and URL now: a bad setting is one line at start, not a retry loop.
  buildClientOptions(options, 5, clock.now());
  const props = userProperties(options);
  const listeners = new Listeners<ClientEvents>((err, event) =>
    log.error({ err, event }, 'an MQTT listener failed'),
  );
  const subscriptions = new Set<string>();
  const reported = new Set<string>();
  let state: ConnectionState = initialConnection(clock.now());
  let protocol: ProtocolVersion = options.protocol === 4 ? 4 : 5;
  let client: MqttClient | undefined;
  let generation = 0;
  let reconnects = 0;

  function step(event: ConnectionEvent): void {
    const out = connectionStep(state, event, redacted);
    state = out.state;
    if (out.say) log[out.say.level](out.say.fields ?? {}, out.say.message);
  }

  function report(err: ReplugError): void {
    const key = `${err.code}:${String(err.details?.reasonCode ?? '')}`;
    if (reported.has(key)) return;
    reported.add(key);
    log.error({ code: err.code, ...err.details }, `${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    listeners.emit('problem', err);
  }

  function refused(reason: Reason, what: string): ReplugError {
    const auth = reason.kind === 'auth';
    return new ReplugError(
      errorCodeFor(reason),
      `broker ${redacted} ${what}: ${reason.meaning} (${hex(reason.code)})`,
      {
        hint: auth
          ? 'check the user name and password the agent was given, the broker users and its ACL; retrying'
          : 'the broker says why; retrying',
        details: { reasonCode: reason.code, meaning: reason.meaning },
      },
    );
  }

  function connect(): void {
    const gen = ++generation;
    const c = mqtt.connect(href, buildClientOptions(options, protocol, clock.now()));
    client = c;
    c.on('connect', () => {
      if (gen !== generation) return;
      const reconnect = state.kind === 'down' && state.everUp;
      if (reconnect) reconnects++;
      reported.clear();
      step({ type: 'connack', protocol, at: clock.now() });
      for (const filter of subscriptions) c.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
      listeners.emit('up', { protocol, reconnect });
    });
    c.on('message', (topic, payload) => {
      if (gen === generation) listeners.emit('message', topic, payload);
    });
    c.on('close', () => {
      if (gen !== generation) return;
      const wasUp = state.kind === 'up';
      step({ type: 'close', at: clock.now() });
      if (wasUp) listeners.emit('down');
    });
    c.on('error', (err: Error & { code?: unknown }) => {
      if (gen !== generation) return;
      onError(c, err);
    });
  }

  function onError(c: MqttClient, err: Error & { code?: unknown }): void {
    if (typeof err.code === 'number') {
      if (protocol === 5 && options.protocol !== 5 && isUnsupportedProtocol(err.code)) {
        log.info(`broker ${redacted} does not speak MQTT 5; using 3.1.1`);
        protocol = 4;
        generation++; // the old client's close is not an outage
        c.end(true);
        connect();
        return;
      }
      report(refused(connackReason(err.code, protocol), 'refused the connection'));
      return;
    }
    const tls = tlsProblem(err);
    if (tls) step({ type: 'problem', text: tls });
    else log.debug({ err: err.message, code: err.code }, 'mqtt connection error');
  }

  function publishOptions(as: PublishAs): IClientPublishOptions {
    if (protocol !== 5) return { qos: 1, retain: as.retain };
    return {
      qos: 1,
      retain: as.retain,
      properties: {
        contentType: 'application/json',
        userProperties: props,
        ...(as.event ? { messageExpiryInterval: options.eventExpiryS ?? 86_400 } : {}),
      },
    };
  }

  return {
    redacted,
    on: listeners.on.bind(listeners),
    get state(): ConnectionState {
      return state;
    },
    get isUp(): boolean {
      return state.kind === 'up';
    },
    get protocol(): ProtocolVersion {
      return protocol;
    },
    /** Successful connects after the first. */
    get reconnects(): number {
      return reconnects;
    },
    /** The live MQTT.js client, for diagnostics and tests (e.g. destroying the stream to fire the will). */
    get raw(): MqttClient | undefined {
      return client;
    },
    start(): void {
      if (!client && state.kind !== 'stopped') connect();
    },
    /**
     * QoS 1. Rejects when the broker refuses (negative PUBACK: the error carries the reason code) or when
     * the client goes away with the message in flight.
     */
    publish(topic: string, payload: string, as: PublishAs): Promise<void> {
      const c = client;
      if (!c || state.kind !== 'up') return Promise.reject(new Error('not connected'));
      return c.publishAsync(topic, payload, publishOptions(as)).then(() => undefined);
    },
    /** Kept across reconnects and protocol fall backs. */
    subscribe(filter: string): void {
      subscriptions.add(filter);
      if (state.kind === 'up') client?.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
    },
    /** Maps a negative PUBACK's reason code to its meaning and reports it (once per reason). */
    refusedPublish(what: string, reason: Reason): void {
      report(refused(reason, `refused ${what}`));
    },
    /** Publishes `last` (the clean offline status) within `boundMs`, then disconnects; idempotent. */
    async stop(last?: { topic: string; payload: string }, boundMs = 2000): Promise<void> {
      if (state.kind === 'stopped') return;
      const c = client;
      const wasUp = state.kind === 'up';
      if (c && wasUp && last)
        await within(
          clock,
          boundMs,
          c.publishAsync(last.topic, last.payload, publishOptions({ retain: true })),
        );
      step({ type: 'stop' });
      generation++;
      if (c) await within(clock, boundMs, c.endAsync(!c.connected));
      listeners.clear();
    },
  };
}

/** Waits for `p` at most `ms` on the injected clock; a rejection counts as done. */
function within(clock: Clock, ms: number, p: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(resolve, ms);
    p.catch(() => undefined).then(() => {
      clock.clearTimeout(timer);
      resolve();
    });
  });
}
