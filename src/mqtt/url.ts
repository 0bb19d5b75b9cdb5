/**
 * The one broker-URL parser, for the agent's config, its MQTT client and `replug watch` (issue 13: config
 * used to accept `tcp://`, which the client then refused at connect time).
 *
 * Accepted: mqtt:// and mqtts:// (TCP, TLS), ws:// and wss:// (WebSocket), and the Paho/Mosquitto spellings
 * tcp:// and ssl://, which are normalised to mqtt:// and mqtts:// before MQTT.js sees them (MQTT.js has
 * `tcp` and `ssl` too, but refuses them once a client certificate is set: connect/index.js switches only
 * mqtt/ws/wx/ali to their secure twin).
 */
import { ErrorCodes, ReplugError } from '../errors.js';

export type BrokerScheme = 'mqtt' | 'mqtts' | 'ws' | 'wss';

const SCHEMES: Record<string, BrokerScheme> = {
  'mqtt:': 'mqtt',
  'tcp:': 'mqtt',
  'mqtts:': 'mqtts',
  'ssl:': 'mqtts',
  'ws:': 'ws',
  'wss:': 'wss',
};

const DEFAULT_PORTS: Record<BrokerScheme, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

export interface BrokerUrl {
  /** The normalised URL (tcp:// -> mqtt://), credentials kept: what MQTT.js connects to. */
  href: string;
  url: URL;
  scheme: BrokerScheme;
  host: string;
  port: number;
  /** The URL without credentials: what info.broker.url and logs show. */
  redacted: string;
  tls: boolean;
}

export const BROKER_URL_HINT = 'use mqtt://host:1883, mqtts://host:8883, ws://host:8080/mqtt or wss://...';

/** The problem with a broker URL as one sentence naming it (credentials masked), or the parsed URL. */
export function checkBrokerUrl(text: string): BrokerUrl | string {
  const shown = `"${text.replace(/\/\/[^@/]*@/, '//***@')}"`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${shown} is not a URL; expected e.g. mqtt://broker.local:1883 or mqtts://host:8883`;
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme)
    return `${shown} uses ${url.protocol.replace(/:$/, '')}://, expected one of mqtt://, mqtts://, ws://, wss:// (tcp:// and ssl:// work too)`;
  if (!url.hostname) return `${shown} has no host; expected e.g. mqtt://broker.local:1883`;
  const normal = new URL(`${scheme}://${text.slice(url.protocol.length + 2)}`);
  const clean = new URL(normal.href);
  clean.username = '';
  clean.password = '';
  return {
    href: normal.href.replace(/\/$/, ''),
    url: normal,
    scheme,
    host: normal.hostname,
    port: normal.port ? Number(normal.port) : DEFAULT_PORTS[scheme],
    redacted: clean.href.replace(/\/$/, ''),
    tls: scheme === 'mqtts' || scheme === 'wss',
  };
}

/** checkBrokerUrl that throws REPLUG_MQTT_URL: for callers past configuration (library use, tests). */
export function parseBrokerUrl(text: string): BrokerUrl {
  const parsed = checkBrokerUrl(text);
  if (typeof parsed === 'string')
    throw new ReplugError(ErrorCodes.MQTT_URL, `broker URL ${parsed}`, { hint: BROKER_URL_HINT });
  return parsed;
}
