/**
 * The embedded/standalone MQTT broker: aedes 2.0.0-beta.1 (MQTT 3.1, 3.1.1 and 5, issue 14) on a TCP or
 * TLS listener, with users (users.ts), per-role ACL (acl.ts), the anonymous policy (policy.ts), on-disk
 * retained state and sessions (persistence.ts), and the fixes replug carries on top of the beta
 * (aedes-fixes.ts). `replug agent` calls startBroker() when no --mqtt is given; `replug broker` runs it alone.
 *
 *   const broker = await startBroker({ port: 0, persistenceDir, log });
 *   mqtt.connect(broker.url); ... await broker.close();
 */

import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { Aedes, type Client } from 'aedes';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { type AclOptions, authorizePublish, authorizeSubscribe, type Principal } from './acl.js';
import {
  backlogFirst,
  boundInboundQoS2,
  nullPrototypeBrokerMaps,
  nullPrototypeClientMaps,
  orderPublishes,
} from './aedes-fixes.js';
import { createAuthenticate, type LocalAgentCredential } from './guard/auth.js';
import { createGate } from './guard/gate.js';
import { type BrokerLimits, resolveLimits } from './guard/limits.js';
import { createLoginGuard } from './guard/logins.js';
import { boundOutgoing } from './guard/outgoing.js';
import { loadRetainedIndex, quotaHook, trackRetainedStore } from './guard/quota.js';
import { type OpenPersistence, openPersistence } from './persistence.js';
import { checkListenPolicy, isLoopbackHost } from './policy.js';
import { certificateWarning, loadTls, type TlsFiles } from './tls.js';
import { UserStore } from './users.js';

export type { AclOptions } from './acl.js';
export type { LocalAgentCredential } from './guard/auth.js';
export type { BrokerLimits } from './guard/limits.js';
export type { TlsFiles } from './tls.js';

export interface BrokerOptions {
  /** Listen address; default 127.0.0.1 (loopback: anonymous allowed, nothing reachable from the network). */
  host?: string;
  /** Default 1883 (8883 with TLS); 0 picks a free port (tests, embedded use). */
  port?: number;
  /** PEM file paths; with `ca`, clients must present a certificate signed by it (requireClientCert default true). */
  tls?: TlsFiles;
  /** true: anonymous clients from anywhere; false or absent: only from loopback peers (policy.ts). */
  allowAnonymous?: boolean;
  /** Users file (users.ts format). Required to listen beyond loopback unless allowAnonymous is true. */
  usersFile?: string;
  acl?: AclOptions;
  /** Directory for retained messages and persistent sessions; in memory when absent. */
  persistenceDir?: string;
  /**
   * MQTT 5: the longest Session Expiry Interval a client gets, in seconds (a larger request, "never"
   * included, is cut to this and the CONNACK says so). Default DEFAULT_MAX_SESSION_EXPIRY_S (one day).
   * MQTT 3.1.1 has no expiry: a persistent 3.1.1 session lasts until the client cleans it.
   */
  maxSessionExpiryS?: number;
  /** Abuse limits (guard/limits.ts, docs/broker.md); each absent one takes its default. */
  limits?: Partial<BrokerLimits>;
  /**
   * The embedded broker's own agent (issue 11): this username and one-time password admit it as that
   * agent, without the users file, and reserve its client id `replug-<username>` for it.
   */
  localAgent?: LocalAgentCredential;
  log?: Logger;
}

/** One day: a Home Assistant restart or a week-end power cut of the Pi's neighbours is far shorter. */
export const DEFAULT_MAX_SESSION_EXPIRY_S = 86_400;
/** Sessions (and, separately, delayed wills) waiting for their expiry at once; beyond it one ends now. */
export const MAX_PENDING_SESSIONS = 10_000;

export interface RunningBroker {
  /** The address actually bound (port resolved when 0 was asked). */
  readonly address: { host: string; port: number };
  /** A URL local clients can connect to: mqtt:// or mqtts://; 0.0.0.0 / :: become 127.0.0.1 / [::1]. */
  readonly url: string;
  readonly aedes: Aedes;
  /** The limits in force (defaults filled in). */
  readonly limits: BrokerLimits;
  /** With `localAgent`: the credential the embedded agent connects with. */
  readonly localAgent: LocalAgentCredential | undefined;
  /** Sockets accepted but not yet answered with a CONNACK, and those the gate refused or evicted. */
  guardCounters(): { connecting: number; refusedHeader: number; evicted: number; droppedQoS0: number };
  /** Disconnects clients, stops listening, flushes and closes the on-disk state. Idempotent. */
  close(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: net.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port, exclusive: true });
  });
}

function listenError(err: unknown, host: string, port: number): ReplugError {
  const errno = errnoOf(err);
  if (errno === 'EADDRINUSE') {
    return new ReplugError(ErrorCodes.BROKER_PORT_IN_USE, `port ${port} on ${host} is already in use`, {
      hint: 'another broker is probably running there; choose another port with --broker-port',
      // The agent's boundary offers `--mqtt <url>` (use that broker instead); `replug broker` has no such flag.
      details: { url: `mqtt://${urlHost(host)}:${port}` },
      cause: err,
    });
  }
  if (errno === 'EACCES') {
    return new ReplugError(ErrorCodes.BROKER_PORT_IN_USE, `not allowed to listen on port ${port}`, {
      hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; use --broker-port 1883 or higher',
      cause: err,
    });
  }
  return new ReplugError(
    ErrorCodes.CONFIG_INVALID,
    `cannot listen on ${host}:${port}: ${errno ?? String(err)}`,
    {
      hint: 'check --broker-host: it must be an address of this machine (or 0.0.0.0 for all)',
      cause: err,
    },
  );
}

// This function is longer than 80 lines because aedes takes its policy hooks (preConnect, authenticate,
// authorizePublish, authorizeSubscribe) at creation, each closing over the users, ACL, guard and will state.
export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const log = options.log ?? silentLogger();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (options.tls ? 8883 : 1883);
  const limits = resolveLimits(options.limits);
  checkListenPolicy({ host, usersFile: options.usersFile, allowAnonymous: options.allowAnonymous });

  const pem = options.tls ? await loadTls(options.tls) : undefined;
  const certProblem = pem ? certificateWarning(pem.cert) : undefined;
  if (certProblem) log.warn({ cert: options.tls?.cert }, `broker TLS certificate ${certProblem}`);
  const users = options.usersFile ? await UserStore.open(options.usersFile) : undefined;
  const store: OpenPersistence | undefined = options.persistenceDir
    ? await openPersistence(options.persistenceDir)
    : undefined;
  const principals = new WeakMap<Client, Principal>();
  const willTopics = new WeakMap<Client, string>();
  const logins = createLoginGuard({
    failures: limits.loginFailures,
    delayMaxMs: limits.loginDelayMaxMs,
    windowMs: limits.loginWindowMs,
    report: (peer, reason, count) =>
      log.warn(
        { peer, count, rule: 'login' },
        `broker refused ${count} login${count === 1 ? '' : 's'} from ${peer}: ${reason} (one line per address per ${limits.loginWindowMs} ms)`,
      ),
  });
  const authenticate = createAuthenticate({
    users,
    allowAnonymous: options.allowAnonymous,
    acl: options.acl,
    localAgent: options.localAgent,
    logins,
    log,
    willTopics,
    principals,
  });
  let droppedQoS0 = 0;

  let aedes: Aedes;
  let holdLiveUntilReady: ((client: Client) => void) | undefined;
  let retained: ReturnType<typeof quotaHook> | undefined;
  try {
    aedes = await Aedes.createBroker({
      ...(store ? { persistence: store.persistence } : {}),
      sessionExpiryIntervalLimit: options.maxSessionExpiryS ?? DEFAULT_MAX_SESSION_EXPIRY_S,
      pendingSessionsLimit: MAX_PENDING_SESSIONS,
      connectTimeout: limits.connectTimeoutMs,
      maximumPacketSize: limits.packetBytes,
      preConnect(client, packet, done) {
        nullPrototypeClientMaps(client);
        // Bound first, hold second: deliveries released after a replay pass the bound too.
        boundOutgoing(client, {
          outgoingBytes: limits.outgoingBytes,
          slowConsumerMs: limits.slowConsumerMs,
          onDrop: () => droppedQoS0++,
          onDisconnect: (c, reason) =>
            log.warn({ client: c.id, rule: 'outgoing' }, `broker disconnected ${c.id}: ${reason}`),
        });
        holdLiveUntilReady?.(client);
        if (packet.will) willTopics.set(client, packet.will.topic);
        done(null, true);
      },
      authenticate,
      authorizePublish(client, packet, done) {
        // client is null for the broker's own publishes and for wills of clients a crashed broker left
        // behind; those wills were checked at CONNECT (guard/auth.ts).
        if (!client) return done(null);
        const decision = authorizePublish(
          principals.get(client) ?? { kind: 'anonymous', observer: Boolean(users) },
          packet.topic,
          options.acl,
        );
        if (!decision.allow) {
          log.warn({ client: client.id, topic: packet.topic, rule: 'acl' }, decision.reason);
          // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection. MQTT 5: aedes answers a QoS 1/2
          // PUBLISH with reason code 0x87 and this reason string, and keeps the connection.
          return done(new Error(decision.reason));
        }
        if (packet.retain && retained) return retained(client, packet, done);
        done(null);
      },
      authorizeSubscribe(client, sub, done) {
        const decision = authorizeSubscribe(
          principals.get(client) ?? { kind: 'anonymous', observer: Boolean(users) },
          sub.topic,
          options.acl,
        );
        if (decision.allow) return done(null, sub);
        log.warn({ client: client.id, topic: sub.topic, rule: 'acl' }, decision.reason);
        // SUBACK failure for this filter (3.1.1 §3.9.3: 0x80; 5 §3.9.3: 0x87 Not authorized), connection stays up.
        done(null, null);
      },
    });
    const index = await loadRetainedIndex(aedes, {
      topics: limits.retainedTopics,
      bytes: limits.retainedBytes,
    });
    trackRetainedStore(aedes, index);
    retained = quotaHook(index, (client, reason) =>
      log.warn({ client: client.id, rule: 'retained-quota' }, `broker refused retained publish: ${reason}`),
    );
  } catch (err) {
    await store?.close();
    throw err;
  }
  nullPrototypeBrokerMaps(aedes);
  orderPublishes(aedes);
  holdLiveUntilReady = backlogFirst(aedes);
  boundInboundQoS2(aedes, (client, limit) =>
    log.warn(
      { client: client.id, limit },
      'broker closed a client with too many QoS 2 messages awaiting PUBREL',
    ),
  );
  aedes.on('clientError', (client, err) =>
    log.debug({ client: client.id, err: err.message }, 'broker client error'),
  );
  aedes.on('connectionError', (client, err) =>
    log.debug({ client: client?.id, err: err.message }, 'broker connection error'),
  );

  const gate = createGate({
    maxConnectBytes: limits.connectBytes,
    maxConnecting: limits.connecting,
    connectTimeoutMs: limits.connectTimeoutMs,
    onRefuse: (socket, reason) =>
      log.debug(
        { peer: (socket as net.Socket).remoteAddress, rule: 'gate' },
        `broker closed a socket: ${reason}`,
      ),
  });
  aedes.on('clientReady', (client) => gate.settled(client.conn as unknown as net.Socket));
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    // No Nagle (issue 17, start-up): MQTT writes small packets back to back (a SUBACK, then the retained
    // or live PUBLISH), and Nagle held the second one until the client acknowledged the first, which its
    // kernel delays by up to 40 ms. The agent's `online` reached a subscriber ~30 ms after the broker
    // had it; with TCP_NODELAY, ~6 ms.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    gate.admit(socket, (s) => aedes.handle(s as net.Socket));
  };
  const server = pem
    ? (await import('node:tls')).createServer(
        {
          ...pem,
          requestCert: Boolean(options.tls?.ca),
          rejectUnauthorized: options.tls?.ca ? options.tls.requireClientCert !== false : false,
        },
        onConnection,
      )
    : net.createServer(onConnection);

  let bound: AddressInfo;
  try {
    bound = await listen(server, host, port);
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await store?.close();
    throw listenError(err, host, port);
  }
  const scheme = pem ? 'mqtts' : 'mqtt';
  const url = `${scheme}://${urlHost(host)}:${bound.port}`;
  const auth = users ? `users from ${users.file}` : 'no users file';
  const anon =
    options.allowAnonymous === true
      ? 'anonymous allowed'
      : isLoopbackHost(host)
        ? 'anonymous allowed on loopback'
        : 'anonymous allowed from loopback peers only';
  const rights = users ? ', observer rights' : '';
  log.info(
    { url, host, port: bound.port, tls: Boolean(pem), persistence: store?.location ?? 'memory', limits },
    `broker listening on ${scheme}://${urlHost(host)}:${bound.port} (${anon}${rights}; ${auth})`,
  );

  let closing: Promise<void> | undefined;
  return {
    address: { host, port: bound.port },
    url,
    aedes,
    limits,
    localAgent: options.localAgent,
    guardCounters: () => ({
      connecting: gate.connecting,
      refusedHeader: gate.refused.header,
      evicted: gate.refused.evicted,
      droppedQoS0,
    }),
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        // Sockets that never sent CONNECT are not aedes clients yet: end them so server.close() can finish.
        for (const socket of sockets) socket.destroy();
        await serverClosed;
        await store?.close();
        log.info({ url }, 'broker closed');
      })();
      return closing;
    },
  };
}
