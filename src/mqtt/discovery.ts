/**
 * Runs Home Assistant discovery over the client: the device config on every connect and whenever HA's
 * birth message (`online` on `<prefix>/status`) says it (re)started. Not retained (HA asks again), so a
 * removed agent leaves no config behind on the broker.
 */
import type { AgentClient } from './client.js';
import { buildDiscovery, type HomeAssistantOptions, haStatusTopic } from './homeassistant.js';
import { encodePayload, type TargetSnapshot } from './payloads.js';

type Client = Pick<AgentClient, 'on' | 'isUp' | 'publish' | 'subscribe'>;
/** What a config needs to know of a target to announce its entities. */
export type DiscoveryTarget = Pick<TargetSnapshot, 'target' | 'vid' | 'pid' | 'serial' | 'heal'>;

export interface DiscoverySource {
  targets(): DiscoveryTarget[];
  /** Components to remove (id -> platform), included in every config sent until they are confirmed. */
  removed(): Record<string, string>;
}

export interface Discovery {
  /** Sends the config now (when connected): a target appeared. */
  refresh(): void;
  /**
   * Called with the removals a config carried once the broker acknowledged it after HA's birth message was
   * seen (so HA, subscribed, got it).
   */
  onConfirmed(fn: (removed: Record<string, string>) => void): void;
  stop(): void;
}

export function startDiscovery(
  client: Client,
  options: HomeAssistantOptions,
  agent: { agent: string; version?: string },
  source: DiscoverySource,
): Discovery {
  const statusTopic = haStatusTopic(options);
  let haOnline = false;
  let confirmed: ((removed: Record<string, string>) => void) | undefined;
  const send = () => {
    if (!client.isUp) return;
    const removed = source.removed();
    const m = buildDiscovery(options, agent, source.targets(), removed);
    const heard = haOnline;
    client.publish(m.topic, encodePayload(m.payload), { retain: false }).then(
      () => {
        if (heard) confirmed?.(removed);
      },
      () => undefined, // sent again on the next connect or birth
    );
  };
  client.subscribe(statusTopic);
  const offs = [
    client.on('up', send),
    client.on('message', (topic, payload) => {
      if (topic !== statusTopic) return;
      haOnline = payload.toString('utf8').trim() === 'online';
      if (haOnline) send();
    }),
  ];
  return {
    refresh: send,
    onConfirmed(fn) {
      confirmed = fn;
    },
    stop() {
      for (const off of offs.splice(0)) off();
    },
  };
}
