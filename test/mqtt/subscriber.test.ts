/**
 * The watch subscriber's protocol choice (issue 14): MQTT 5 where the broker offers it, with the agents'
 * user properties handed on (and shown by `--json`), 3.1.1 against a broker that refuses 5 (Aedes 1.2, a
 * real v3-only broker). Real brokers on port 0, real MQTT.js.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { normalize } from '../../src/fleet/output.js';
import type { FleetMessage } from '../../src/fleet/types.js';
import { type FleetSubscriber, subscribe } from '../../src/mqtt/subscriber.js';
import { systemClock } from '../../src/util/clock.js';
import { startAedes } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function watchLink(url: string): { sub: FleetSubscriber; got: FleetMessage[] } {
  const got: FleetMessage[] = [];
  const sub = subscribe(
    { urls: [url], filters: ['replug/+/#'] },
    { clock: systemClock, onMessage: (m) => got.push(m), onLink: () => undefined },
  );
  cleanups.push(() => sub.close());
  return { sub, got };
}

async function publishBoth(url: string, protocolVersion: 4 | 5): Promise<void> {
  const pub = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 });
  cleanups.push(() => pub.endAsync(true));
  const properties = { userProperties: { agent: 'pi', session: '3' } };
  await pub.publishAsync('replug/pi/event', '{"x":1}', {
    qos: 1,
    ...(protocolVersion === 5 ? { properties } : {}),
  });
}

describe('watch subscriber protocol', () => {
  it('speaks MQTT 5 to replug broker and hands on user properties, which --json shows', async () => {
    const broker = await startBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const { sub, got } = watchLink(broker.url);
    await until(() => sub.links[0]?.subscribedAt !== undefined);
    expect(sub.links[0]?.protocolVersion).toBe(5);
    await publishBoth(broker.url, 5);
    await until(() => got.length === 1);
    expect(got[0]?.userProperties).toEqual({ agent: 'pi', session: '3' });
    const line = normalize(got[0] as FleetMessage, { ok: false, reason: 'not-json', detail: '' }, false);
    expect(line).toMatchObject({ userProperties: { agent: 'pi', session: '3' } });
  });

  it('falls back to 3.1.1 against a broker that refuses MQTT 5 (Aedes 1.2), without user properties', async () => {
    const aedes = await startAedes({}, { v311Only: true });
    cleanups.push(() => aedes.close());
    const { sub, got } = watchLink(aedes.url);
    await until(() => sub.links[0]?.subscribedAt !== undefined);
    expect(sub.links[0]).toMatchObject({ protocolVersion: 4, state: 'connected' });
    await publishBoth(aedes.url, 4);
    await until(() => got.length === 1);
    expect(got[0]?.userProperties).toBeUndefined();
    expect(
      normalize(got[0] as FleetMessage, { ok: false, reason: 'not-json', detail: '' }, false),
    ).not.toHaveProperty('userProperties');
  });
});
