/**
 * A fleet of simulated agents for the view suites (terminal, web, metrics): retained census payloads built
 * by the agent's own builders (test/fleet/sim.ts), published by one real MQTT.js client to a real broker,
 * plus live events. Times are offsets from `now` in whole hours, so the ages the views print ("2h ago")
 * do not move while a test runs and screens can be kept as fixtures.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { agentTopics } from '../../../src/mqtt/topics.js';
import {
  buildDevices,
  buildHealth,
  buildStatus,
  CONTAINER,
  device,
  eventFor,
  health,
  infoFor,
  NATIVE,
  targetFor,
} from '../sim.js';

export const HOUR = 3_600_000;

export interface FleetSim {
  client: MqttClient;
  ids: string[];
  /** A replug seen by the view: session up → waiting → up with the given downtime, and a reconnect. */
  replug(id: string, downMs: number, reconnectMs: number): Promise<void>;
  close(): Promise<void>;
}

export const agentName = (i: number) => `pi-${String(i).padStart(3, '0')}`;

/**
 * `n` agents: every 3rd in a container, every 10th offline, every 17th with old (stale) state, every 7th
 * with its target in backoff. `now` anchors the timestamps (2 h ago; stale ones 10 h ago).
 */
export async function publishFleet(url: string, n: number, now: number): Promise<FleetSim> {
  const client = mqtt.connect(url, {
    clientId: `fleet-sim-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const pub = (topic: string, payload: unknown, retain = true) =>
    client.publishAsync(topic, JSON.stringify(payload), { qos: 1, retain });
  const ids: string[] = [];
  const seqs = new Map<string, number>();
  for (let i = 1; i <= n; i++) {
    const id = agentName(i);
    ids.push(id);
    seqs.set(id, 0);
    const ts = now - (i % 17 === 0 ? 10 : 2) * HOUR;
    const t = topicsFor(id);
    await pub(t.status, buildStatus(i % 10 === 0 ? 'offline' : 'online', 1, ts));
    await pub(t.info, infoFor(id, 1, i % 3 === 0 ? CONTAINER : NATIVE, ts));
    await pub(t.devices, buildDevices([device], 1, ts));
    const state = i % 7 === 0 ? 'backoff' : 'up';
    const target = targetFor(
      1,
      {
        state,
        since: ts,
        ...(state === 'up' ? { lastError: undefined, lastOutcome: 'succeeded' as const } : {}),
        reconnects: { count: i % 5, ok: i % 5, failed: 0, p50Ms: 10 + i, p95Ms: 20 + 3 * i },
      },
      ts,
    );
    await pub(t.target('1209-0001-abc123'), target);
    await pub(
      t.health,
      buildHealth(health, { depth: 0, dropped: 0, capacity: 10 }, { connected: true, reconnects: 0 }, 1, ts),
    );
  }
  return {
    client,
    ids,
    async replug(id, downMs, reconnectMs) {
      const t = topicsFor(id);
      const at = now - 2 * HOUR;
      const seq = () => {
        const s = (seqs.get(id) ?? 0) + 1;
        seqs.set(id, s);
        return s;
      };
      const target = '1209:0001:ABC123';
      await pub(
        t.event,
        eventFor('session.state', { target, state: 'waiting', previous: 'up' }, seq(), 1, at),
        false,
      );
      await pub(
        t.event,
        eventFor(
          'reconnect.succeeded',
          { target, attempts: 1, device, durationMs: reconnectMs },
          seq(),
          1,
          at + downMs,
        ),
        false,
      );
      await pub(
        t.event,
        eventFor('session.state', { target, state: 'up', previous: 'starting' }, seq(), 1, at + downMs),
        false,
      );
    },
    close: () => client.endAsync(true),
  };
}

function topicsFor(id: string) {
  return agentTopics(id);
}
