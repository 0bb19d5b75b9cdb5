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
import type { IClientPublishOptions, MqttClient } from 'mqtt';
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
import { connectMqtt } from './lean-connect.js';
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
  /** MQTT 5 Correlation Data (a response to a request that carried it, issue 18). */
  correlationData?: Buffer;
}

/** What a delivered message carried besides topic and payload (MQTT 5 properties only on a v5 link). */
export interface MessageMeta {
  retain: boolean;
  responseTopic?: string | undefined;
  correlationData?: Buffer | undefined;
}

export interface ClientEvents {
  up: [{ protocol: ProtocolVersion; reconnect: boolean }];
  down: [];
  /** A refusal (credentials, ACL, quota...), once per distinct code and reason until the next connect. */
  problem: [ReplugError];
  message: [topic: string, payload: Buffer, meta: MessageMeta];
}

export function createClient(options: ClientOptions): AgentClient {
  return new AgentClient(options);
}

export class AgentClient {
  readonly redacted: string;
  private readonly href: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly props: Record<string, string>;
  private readonly listeners: Listeners<ClientEvents>;
  private readonly subscriptions = new Set<string>();
  private readonly reported = new Set<string>();
  private connection: ConnectionState;
  private version: ProtocolVersion;
  private client: MqttClient | undefined;
  /** The MQTT 5 Reason String of the last refusing CONNACK (issue 11: say which rule refused the agent). */
  private connackReasonString: string | undefined;
  private generation = 0;
  private reconnectCount = 0;

  constructor(private readonly options: ClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = (options.log ?? silentLogger()).child({ module: 'mqtt' });
    const { redacted, href } = parseBrokerUrl(options.url);
    this.redacted = redacted;
    this.href = href;
    // Validates the TLS files and URL now: a bad setting is one line at start, not a retry loop.
    buildClientOptions(options, 5, this.clock.now());
    this.props = userProperties(options);
    this.listeners = new Listeners<ClientEvents>((err, event) =>
      this.log.error({ err, event }, 'an MQTT listener failed'),
    );
    this.connection = initialConnection(this.clock.now());
    this.version = options.protocol === 4 ? 4 : 5;
  }

  on<K extends keyof ClientEvents>(event: K, fn: (...args: ClientEvents[K]) => void): () => void {
    return this.listeners.on(event, fn);
  }

  get state(): ConnectionState {
    return this.connection;
  }

  get isUp(): boolean {
    return this.connection.kind === 'up';
  }

  get protocol(): ProtocolVersion {
    return this.version;
  }

  /** Successful connects after the first. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** The live MQTT.js client, for diagnostics and tests (e.g. destroying the stream to fire the will). */
  get raw(): MqttClient | undefined {
    return this.client;
  }

  start(): void {
    if (!this.client && this.connection.kind !== 'stopped') this.connect();
  }

  /**
   * QoS 1. Rejects when the broker refuses (negative PUBACK: the error carries the reason code) or when
   * the client goes away with the message in flight.
   */
  publish(topic: string, payload: string, as: PublishAs): Promise<void> {
    const c = this.client;
    if (!c || this.connection.kind !== 'up') return Promise.reject(new Error('not connected'));
    return c.publishAsync(topic, payload, this.publishOptions(as)).then(() => undefined);
  }

  /** Kept across reconnects and protocol fall backs. */
  subscribe(filter: string): void {
    this.subscriptions.add(filter);
    if (this.isUp) this.client?.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
  }

  /** Forgets a filter given to subscribe(), and unsubscribes now when connected. */
  unsubscribe(filter: string): void {
    if (!this.subscriptions.delete(filter)) return;
    if (this.isUp) this.client?.unsubscribeAsync(filter).catch(() => undefined);
  }

  /** Maps a negative PUBACK's reason code to its meaning and reports it (once per reason). */
  refusedPublish(what: string, reason: Reason): void {
    this.report(this.refused(reason, `refused ${what}`));
  }

  /** Publishes `last` (the clean offline status) within `boundMs`, then disconnects; idempotent. */
  async stop(last?: { topic: string; payload: string }, boundMs = 2000): Promise<void> {
    if (this.connection.kind === 'stopped') return;
    // Stopped while the first connect is in flight: let it finish (bounded), so the broker hears a clean
    // DISCONNECT and keeps the will to itself, instead of publishing `offline` without its reason.
    if (this.connection.kind === 'connecting' && this.client)
      await within(this.clock, boundMs, this.nextUp());
    const c = this.client;
    if (c && this.isUp && last)
      await within(
        this.clock,
        boundMs,
        c.publishAsync(last.topic, last.payload, this.publishOptions({ retain: true })),
      );
    this.step({ type: 'stop' });
    this.generation++;
    if (c) await within(this.clock, boundMs, c.endAsync(!c.connected));
    this.listeners.clear();
  }

  private nextUp(): Promise<void> {
    return new Promise((resolve) => {
      const off = this.listeners.on('up', () => {
        off();
        resolve();
      });
    });
  }

  private step(event: ConnectionEvent): void {
    const out = connectionStep(this.connection, event, this.redacted);
    this.connection = out.state;
    if (out.say) this.log[out.say.level](out.say.fields ?? {}, out.say.message);
  }

  private report(err: ReplugError): void {
    const key = `${err.code}:${String(err.details?.reasonCode ?? '')}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.log.error({ code: err.code, ...err.details }, `${err.message}${err.hint ? ` (${err.hint})` : ''}`);
    this.listeners.emit('problem', err);
  }

  private refused(reason: Reason, what: string): ReplugError {
    const auth = reason.kind === 'auth';
    return new ReplugError(
      errorCodeFor(reason),
      `broker ${this.redacted} ${what}: ${reason.meaning} (${hex(reason.code)})`,
      {
        hint: auth
          ? 'check the user name and password the agent was given, the broker users and its ACL; retrying'
          : 'the broker says why; retrying',
        details: { reasonCode: reason.code, meaning: reason.meaning },
      },
    );
  }

  private connect(): void {
    const gen = ++this.generation;
    const c = connectMqtt(this.href, buildClientOptions(this.options, this.version, this.clock.now()));
    this.client = c;
    c.on('connect', () => {
      if (gen === this.generation) this.onConnect(c);
    });
    c.on('message', (topic, payload, packet) => {
      if (gen !== this.generation) return;
      const p = packet.properties;
      this.listeners.emit('message', topic, payload, {
        retain: packet.retain === true,
        responseTopic: p?.responseTopic,
        correlationData: p?.correlationData,
      });
    });
    c.on('packetreceive', (packet) => {
      if (gen !== this.generation || packet.cmd !== 'connack') return;
      this.connackReasonString = (
        packet as { properties?: { reasonString?: string } }
      ).properties?.reasonString;
    });
    c.on('close', () => {
      if (gen !== this.generation) return;
      const wasUp = this.isUp;
      this.step({ type: 'close', at: this.clock.now() });
      if (wasUp) this.listeners.emit('down');
    });
    c.on('error', (err: Error & { code?: unknown }) => {
      if (gen === this.generation) this.onError(c, err);
    });
  }

  private onConnect(c: MqttClient): void {
    const reconnect = this.connection.kind === 'down' && this.connection.everUp;
    if (reconnect) this.reconnectCount++;
    this.reported.clear();
    this.step({ type: 'connack', protocol: this.version, at: this.clock.now() });
    for (const filter of this.subscriptions) c.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
    this.listeners.emit('up', { protocol: this.version, reconnect });
  }

  private onError(c: MqttClient, err: Error & { code?: unknown }): void {
    if (typeof err.code === 'number') {
      if (this.version === 5 && this.options.protocol !== 5 && isUnsupportedProtocol(err.code)) {
        this.log.info(`broker ${this.redacted} does not speak MQTT 5; using 3.1.1`);
        this.version = 4;
        this.generation++; // the old client's close is not an outage
        c.end(true);
        this.connect();
        return;
      }
      const said = this.connackReasonString;
      this.report(
        this.refused(
          connackReason(err.code, this.version),
          `refused the connection${said ? ` (${said})` : ''}`,
        ),
      );
      return;
    }
    const tls = tlsProblem(err);
    if (tls) this.step({ type: 'problem', text: tls });
    else this.log.debug({ err: err.message, code: err.code }, 'mqtt connection error');
  }

  private publishOptions(as: PublishAs): IClientPublishOptions {
    if (this.version !== 5) return { qos: 1, retain: as.retain };
    return {
      qos: 1,
      retain: as.retain,
      properties: {
        contentType: 'application/json',
        userProperties: this.props,
        ...(as.event ? { messageExpiryInterval: this.options.eventExpiryS ?? 86_400 } : {}),
        ...(as.correlationData ? { correlationData: as.correlationData } : {}),
      },
    };
  }
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
