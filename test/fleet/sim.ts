/**
 * Simulated agents for the fleet suites: payloads come from the real builders in src/mqtt/payloads.ts (the
 * same ones the agent uses, validated against the schemas by test/mqtt/payloads.test.ts), and the
 * integration suites publish them with real MQTT.js clients.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { FleetMessage } from '../../src/fleet/types.js';
import {
  buildDevices,
  buildEvent,
  buildHealth,
  buildInfo,
  buildStatus,
  buildTargetState,
  type EventData,
  type EventType,
  eventDraft,
  type RuntimeFacts,
  type TargetSnapshot,
} from '../../src/mqtt/payloads.js';
import { agentTopics } from '../../src/mqtt/topics.js';
import { device, health, info, snapshot } from '../mqtt/fixtures.js';

export const T0 = Date.UTC(2026, 0, 1);

export const NATIVE: RuntimeFacts = {
  kind: 'native',
  netns: 'host',
  udev: true,
  devfs: 'devtmpfs',
  userns: 'initial',
  usbBus: true,
};
export const CONTAINER: RuntimeFacts = { ...info.runtime };

export function infoFor(agent: string, session: number, runtime: RuntimeFacts = NATIVE, ts = T0) {
  return buildInfo({ ...info, agent, host: agent, runtime }, session, ts);
}

export function targetFor(session: number, over: Partial<TargetSnapshot> = {}, ts = T0) {
  return buildTargetState({ ...snapshot, ...over }, session, ts);
}

export function eventFor<K extends EventType>(
  type: K,
  data: EventData<K>,
  seq: number,
  session: number,
  ts = T0,
) {
  return buildEvent(eventDraft(type, data, ts), seq, session);
}

export { buildDevices, buildHealth, buildStatus, device, health };

/** A FleetMessage for the pure reducer. */
export function msg(
  topic: string,
  payload: unknown,
  o: { broker?: string; retained?: boolean; at?: number } = {},
): FleetMessage {
  const bytes =
    payload instanceof Uint8Array
      ? payload
      : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return {
    broker: o.broker ?? 'mqtt://a:1883',
    topic,
    payload: bytes,
    retained: o.retained ?? true,
    receivedAt: o.at ?? T0,
  };
}

export interface SimAgent {
  id: string;
  client: MqttClient;
  session: number;
  publish(topic: string, payload: unknown, retain?: boolean): Promise<void>;
  /** status online, info, devices, one target state, health: the census an agent publishes on connect. */
  census(runtime?: RuntimeFacts, target?: Partial<TargetSnapshot>): Promise<void>;
  /** Drops the TCP connection without DISCONNECT, so the broker publishes the will. */
  kill(): void;
  end(): Promise<void>;
}

export async function simAgent(url: string, id: string, session: number): Promise<SimAgent> {
  const topics = agentTopics(id);
  const client = mqtt.connect(url, {
    clientId: `sim-${id}-${session}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
    will: {
      topic: topics.status,
      payload: Buffer.from(JSON.stringify(buildStatus('offline', session, T0))),
      qos: 1,
      retain: true,
    },
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const publish = async (topic: string, payload: unknown, retain = true) => {
    const body =
      typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload);
    await client.publishAsync(topic, Buffer.from(body as string), { qos: 1, retain });
  };
  return {
    id,
    client,
    session,
    publish,
    async census(runtime = NATIVE, target = {}) {
      await publish(topics.status, buildStatus('online', session, T0));
      await publish(topics.info, infoFor(id, session, runtime));
      await publish(topics.devices, buildDevices([device], session, T0));
      const t = targetFor(session, target);
      await publish(topics.target(t.target.includes(':') ? specOf(t.target) : t.target), t);
      await publish(
        topics.health,
        buildHealth(
          health,
          { depth: 0, dropped: 0, capacity: 10 },
          { connected: true, reconnects: 0 },
          session,
          T0,
        ),
      );
    },
    kill() {
      client.stream.destroy();
      client.end(true);
    },
    end: () => client.endAsync(true),
  };
}

function specOf(target: string) {
  const [vid = '', pid = '', ...rest] = target.split(':');
  return rest.length ? { vid, pid, serial: rest.join(':') } : { vid, pid };
}
