/**
 * Issue 10, "Delivery through replug's own brokers": one real agent on a fake USB tree plugs and unplugs
 * its target three times; every subscriber (every filter that matches the agent's topics, clean and
 * persistent sessions, MQTT 5 and 3.1.1) must receive, live, every retained update and every event on
 * its topics, in the agent's order. Run through the embedded broker, `replug broker` and Mosquitto (the
 * reference). Before the fix (src/broker/aedes-fixes.ts) wildcard subscribers on the embedded broker got
 * 1-2 of 7-8 `devices` updates.
 *
 * What is compared, per broker: events carry `seq` (consecutive within a boot), so each event subscriber
 * must see 1..N with no gap or repeat; retained topics have no counter, so every subscriber of a topic must
 * see the same sequence of payloads (each carries its own `ts`) as every other subscriber of that topic,
 * and the `devices` sequence must show each of the six plugs and unplugs. Subscribers that match several
 * topics must see the same interleaving.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeUsbTree, ramTmpDir } from '../fakes/usb-tree.js';
import {
  type AgentProcess,
  DEVNODE_DRIVER,
  embeddedBrokerUrl,
  ensureBuilt,
  spawnAgent,
  spawnCli,
} from '../helpers/agent-process.js';
import { mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';

const ID = 'e2e-deliver';
const TARGET = ['--target', '1209:0001', '--driver', DEVNODE_DRIVER];
const LOOPBACK = { vid: 0x1209, pid: 0x0001, serial: 'DLV1', product: 'Loopback' };
const FILTERS = [
  '#',
  'replug/#',
  'replug/+/#',
  `replug/${ID}/+`,
  `replug/${ID}/devices`,
  `replug/${ID}/event`,
];
const haveMosquitto = mosquittoAvailable('e2e: delivery through every broker');

type Message = { topic: string; payload: string };
interface Subscriber {
  name: string;
  filter: string;
  live: Message[];
}

const matches = (filter: string, topic: string) =>
  filter === '#' ||
  (filter.endsWith('/#') && topic.startsWith(filter.slice(0, -1))) ||
  (filter.includes('+') &&
    new RegExp(`^${filter.replaceAll('+', '[^/]+').replace(/\/#$/, '(/.*)?')}$`).test(topic)) ||
  filter === topic;

describe.skipIf(!haveMosquitto)(
  'delivery: every update reaches every matching subscriber, live, in order',
  () => {
    let tree: FakeUsbTree;
    let stateDir: string;
    const cleanups: (() => Promise<unknown>)[] = [];

    beforeAll(async () => {
      await ensureBuilt();
    }, 240_000);
    beforeEach(async () => {
      tree = await FakeUsbTree.create({ parentDir: ramTmpDir() });
      stateDir = await mkdtemp(join(tmpdir(), 'replug-e2e-deliver-'));
    });
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
      await tree.cleanup();
      await rm(stateDir, { recursive: true, force: true });
    });

    function track(proc: AgentProcess): AgentProcess {
      cleanups.push(async () => {
        proc.kill('SIGKILL');
        await proc.exited();
      });
      return proc;
    }

    async function subscribers(url: string): Promise<Subscriber[]> {
      const subs: Subscriber[] = [];
      for (const protocolVersion of [5, 4] as const) {
        for (const persistent of [false, true]) {
          for (const filter of FILTERS) {
            const name = `v${protocolVersion}-${persistent ? 'persistent' : 'clean'}-${filter}`;
            const client: MqttClient = await mqtt.connectAsync(url, {
              protocolVersion,
              clientId: `dlv-${subs.length}`,
              clean: !persistent,
              ...(persistent && protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
              reconnectPeriod: 0,
            });
            cleanups.push(() => client.endAsync(true));
            const sub: Subscriber = { name, filter, live: [] };
            // Retained messages replayed on SUBSCRIBE carry the retain flag; live ones do not (3.1.1 §3.3.1.3).
            client.on('message', (topic, payload, packet) => {
              if (!packet.retain) sub.live.push({ topic, payload: payload.toString() });
            });
            await client.subscribeAsync(filter, { qos: 1 });
            subs.push(sub);
          }
        }
      }
      return subs;
    }

    async function until(what: string, check: () => boolean, ms = 20_000, everyMs = 50): Promise<void> {
      const end = Date.now() + ms;
      while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    }

    /** Three plugs and three unplugs of the target, each waited for in the agent's log. */
    async function plugCycles(proc: AgentProcess): Promise<void> {
      for (let i = 1; i <= 3; i++) {
        const before = proc.logs.filter((l) => l.event === 'device.removed').length;
        await tree.plug(LOOPBACK);
        await proc.waitUntil(
          () => proc.logs.filter((l) => l.event === 'session.state' && l.state === 'up').length >= i,
          15_000,
          `session up #${i}`,
        );
        await tree.unplug(tree.devices()[0]!);
        await proc.waitUntil(
          () => proc.logs.filter((l) => l.event === 'device.removed').length > before,
          15_000,
          `device removed #${i}`,
        );
      }
    }

    function check(subs: Subscriber[]): void {
      const deviceTopic = `replug/${ID}/devices`;
      const eventTopic = `replug/${ID}/event`;
      // The agent's event order: seq 1..N of this boot, each once.
      const seqs = (s: Subscriber) =>
        s.live.filter((m) => m.topic === eventTopic).map((m) => JSON.parse(m.payload).seq as number);
      const eventSubs = subs.filter((s) => matches(s.filter, eventTopic));
      const all = eventSubs.flatMap(seqs);
      const first = Math.min(...all);
      const last = Math.max(...all);
      // Three cycles: at least added, removed and session states per cycle.
      expect(last - first + 1).toBeGreaterThanOrEqual(12);
      const expected = Array.from({ length: last - first + 1 }, (_, i) => first + i);
      for (const s of eventSubs) expect(seqs(s), s.name).toEqual(expected);

      // Retained topics: the same payloads in the same order for every subscriber of the topic.
      const topics = new Set(subs.flatMap((s) => s.live.map((m) => m.topic)));
      for (const topic of [...topics].filter((t) => t !== eventTopic)) {
        const matching = subs.filter((s) => matches(s.filter, topic));
        const reference = matching[0]!.live.filter((m) => m.topic === topic).map((m) => m.payload);
        for (const s of matching)
          expect(
            s.live.filter((m) => m.topic === topic).map((m) => m.payload),
            `${s.name} on ${topic}`,
          ).toEqual(reference);
      }
      // The devices sequence shows the target come and go three times.
      const present = subs
        .find((s) => s.filter === deviceTopic)!
        .live.filter((m) => m.topic === deviceTopic)
        .map((m) => (JSON.parse(m.payload).devices as unknown[]).length > 0);
      const toggles = present.filter((p, i) => i > 0 && p !== present[i - 1]).length + (present[0] ? 1 : 0);
      expect(toggles).toBeGreaterThanOrEqual(6);

      // Subscribers of the same topics see the same interleaving of them.
      const wide = subs.filter((s) => ['#', 'replug/#', 'replug/+/#', `replug/${ID}/+`].includes(s.filter));
      const shared = (topic: string) => matches(`replug/${ID}/+`, topic);
      const order = (s: Subscriber) =>
        s.live.filter((m) => shared(m.topic)).map((m) => `${m.topic} ${m.payload}`);
      for (const s of wide) expect(order(s), s.name).toEqual(order(wide[0]!));
    }

    /** Until 1 s passes with no new message to any subscriber. */
    async function quiet(subs: Subscriber[]): Promise<void> {
      let last = -1;
      await until(
        'the subscribers to go quiet',
        () => {
          const total = subs.reduce((a, s) => a + s.live.length, 0);
          const still = total === last;
          last = total;
          return still;
        },
        20_000,
        1000,
      );
    }

    async function run(url: string | undefined): Promise<void> {
      const proc = track(
        spawnAgent({
          id: ID,
          sysfsRoot: tree.sysfsRoot,
          devfsRoot: tree.devfsRoot,
          stateDir,
          ...(url ? { mqtt: url } : {}),
          extra: ['--settle', '100', '--health-interval', '60000', ...TARGET],
        }),
      );
      const brokerUrl = url ?? (await embeddedBrokerUrl(proc));
      await proc.waitForLog((l) => /^connected to broker/.test(l.msg), 15_000, 'the agent connected');
      await proc.waitForLog((l) => /^agent .* started/.test(l.msg), 15_000, 'agent started');
      const subs = await subscribers(brokerUrl);
      // Whatever was on its way while the subscribers came up is not part of the sequence: start clean.
      await quiet(subs);
      for (const s of subs) s.live = [];
      await plugCycles(proc);
      await quiet(subs);
      check(subs);
    }

    it('embedded broker', async () => {
      await run(undefined);
    }, 120_000);

    it('replug broker', async () => {
      const brokerState = await mkdtemp(join(tmpdir(), 'replug-e2e-deliver-broker-'));
      cleanups.push(() => rm(brokerState, { recursive: true, force: true }));
      const broker = track(spawnCli(['broker', '--port', '0', '--state-dir', brokerState]));
      await run(await embeddedBrokerUrl(broker));
    }, 120_000);

    it('Mosquitto', async () => {
      const mosquitto = await startMosquitto();
      cleanups.push(() => mosquitto.cleanup());
      await run(mosquitto.url);
    }, 120_000);
  },
);
