/** Broker URLs the agent and `replug watch` accept; the answer for a bad one names what is wrong. */
export const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'] as const;

export interface ParsedMqttUrl {
  url: URL;
  protocol: (typeof MQTT_PROTOCOLS)[number];
  host: string;
  port: number;
}

const DEFAULT_PORTS: Record<string, number> = {
  'mqtt:': 1883,
  'tcp:': 1883,
  'mqtts:': 8883,
  'ssl:': 8883,
  'ws:': 80,
  'wss:': 443,
};

export function parseMqttUrl(text: string): ParsedMqttUrl | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL; expected e.g. mqtt://broker.local:1883 or mqtts://host:8883`;
  }
  if (!(MQTT_PROTOCOLS as readonly string[]).includes(url.protocol)) {
    return `"${text}" uses ${url.protocol.replace(/:$/, '')}://, expected one of mqtt://, mqtts://, ws://, wss://`;
  }
  if (!url.hostname) return `"${text}" has no host; expected e.g. mqtt://broker.local:1883`;
  const port = url.port ? Number(url.port) : (DEFAULT_PORTS[url.protocol] ?? 1883);
  return { url, protocol: url.protocol as ParsedMqttUrl['protocol'], host: url.hostname, port };
}
