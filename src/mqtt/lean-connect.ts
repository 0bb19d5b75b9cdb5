/**
 * mqtt.connect without loading all of mqtt.js (issue 17, footprint and start-up). The package's entry
 * loads every transport it has at once: WebSocket (ws, with http, https, zlib), SOCKS (socks, ip-address),
 * TLS, and a worker-timers shim for browsers. An agent on plain `mqtt://` (the embedded broker, most
 * external ones) needs the client class and a TCP socket only, so that is what it loads here; any other
 * case (mqtts, ws, wss, a client certificate, a SOCKS proxy) goes to the full mqtt.connect, loaded then.
 *
 * The lean path does what mqtt.connect does for plain TCP (lib/connect/index.js and tcp.js, mqtt 5): the
 * URL's host and port are defaults the options override, protocol `mqtt`, and an 'error' listener so an
 * error the caller has not subscribed to yet does not throw.
 *
 * The client class is imported statically, so that the published bin's bundle (scripts/bundle.mjs)
 * holds it, with the one copy of mqtt-packet the embedded broker shares; a require() from node_modules
 * beside the bundle loaded a second copy of mqtt-packet and readable-stream, file by file (issue 17,
 * start-up). The full mqtt entry is still required only when it is needed.
 */
import { createRequire } from 'node:module';
import { createConnection } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import clientModule from 'mqtt/lib/client';

const require = createRequire(import.meta.url);

/**
 * The CommonJS module's `exports.default`: Node's ESM import of it (and the bundle's) gives the whole
 * `module.exports` as default, vitest's interop gives `exports.default` itself.
 */
function clientClass(): ClientClass {
  const m = clientModule as unknown as ClientClass | { default: ClientClass };
  return typeof m === 'function' ? m : m.default;
}

type ClientClass = new (
  build: (client: MqttClient) => NodeJS.ReadWriteStream,
  o: IClientOptions,
) => MqttClient;

/** True when `href` + `options` can take the lean path (plain TCP, no client certificate, no proxy). */
export function isPlainTcp(
  href: string,
  options: IClientOptions,
  env: Record<string, string | undefined> = process.env,
): boolean {
  let scheme: string;
  try {
    scheme = new URL(href).protocol;
  } catch {
    return false;
  }
  const plain = scheme === 'mqtt:' || scheme === 'tcp:';
  const certificate = options.cert !== undefined && options.key !== undefined; // mqtt.connect makes it mqtts
  const proxy = options.socksProxy !== undefined || (env.MQTTJS_SOCKS_PROXY ?? '') !== '';
  return plain && !certificate && !proxy;
}

export function connectMqtt(href: string, options: IClientOptions): MqttClient {
  if (!isPlainTcp(href, options)) return (require('mqtt') as typeof import('mqtt')).connect(href, options);
  const url = new URL(href);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const opts: IClientOptions = {
    host,
    hostname: host,
    port: url.port === '' ? 1883 : Number(url.port),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...options,
    protocol: 'mqtt',
  };
  opts.defaultProtocol = 'mqtt';
  const Client = clientClass();
  const client = new Client(
    () => createConnection({ host: opts.hostname ?? host, port: opts.port ?? 1883 }),
    opts,
  );
  client.on('error', () => {});
  return client;
}
