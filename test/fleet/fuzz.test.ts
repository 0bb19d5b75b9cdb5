/**
 * Fuzz: thousands of random and hostile payloads on agent topics, published through a real Aedes to the
 * real CLI (`replug watch --json`). Every case is built so its outcome is known in advance; the CLI must
 * survive, print exactly one line per message with the expected reason, and keep the good agent intact.
 * A seeded PRNG makes a failure reproducible.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { lines, watch } from './cli.js';
import { buildStatus, infoFor, msg, T0 } from './sim.js';

type Case = { topic: string; payload: Buffer; expect: string };

function prng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

function cases(n: number, seed: number): Case[] {
  const rnd = prng(seed);
  const int = (k: number) => Math.floor(rnd() * k);
  const bytes = (k: number) => Buffer.from(Array.from({ length: k }, () => int(256)));
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const victim = (i: number) => `victim-${i % 7}`;
  const make: ((i: number) => Case)[] = [
    // 0xff never occurs in UTF-8, so these are never JSON whatever follows.
    (i) => ({
      topic: `replug/${victim(i)}/status`,
      payload: Buffer.concat([Buffer.from([0xff]), bytes(int(300))]),
      expect: 'not-json',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/info`,
      payload: Buffer.from(`{"agent":"${'a'.repeat(int(50))}`),
      expect: 'not-json',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/devices`,
      payload: Buffer.from(`${'['.repeat(2000 + int(5000))}1${']'.repeat(2000)}`),
      expect: 'not-json',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/health`,
      payload: Buffer.from(`${'{"a":'.repeat(1000 + int(3000))}1${'}'.repeat(1000)}`),
      expect: 'not-json',
    }),
    (i) => {
      const depth = 500 + int(2000);
      return {
        topic: `replug/${victim(i)}/health`,
        payload: Buffer.from(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
        expect: 'schema',
      };
    },
    (i) => ({
      topic: `replug/${victim(i)}/status`,
      payload: Buffer.from('{"__proto__":{"polluted":true},"state":"online","session":1,"ts":1}'),
      expect: 'schema',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/status`,
      payload: json({ state: 'online', session: String(i), ts: T0 }),
      expect: 'schema',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/target/1209-0001/state`,
      payload: json({ constructor: { prototype: { x: 1 } } }),
      expect: 'schema',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/event`,
      payload: json({ type: 'reconnect.succeeded', seq: -i, session: 1, ts: 1 }),
      expect: 'schema',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/info`,
      payload: json(infoFor('good', 1)),
      expect: 'agent-mismatch',
    }),
    (i) => ({
      topic: `replug/${victim(i)}/\u001b[2J${i}`,
      payload: json(buildStatus('online', 1, T0)),
      expect: 'bad-topic',
    }),
    (i) => ({
      topic: `replug/GOOD/status/${i}`,
      payload: json(buildStatus('online', 1, T0)),
      expect: 'bad-topic',
    }),
    (i) => ({
      topic: `replug/good/target/../${i}/state`,
      payload: json(buildStatus('online', 1, T0)),
      expect: 'bad-topic',
    }),
    (i) => ({ topic: `replug/${victim(i)}/status`, payload: json([i, null, true]), expect: 'schema' }),
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) out.push(make[int(make.length)]!(i));
  // A few huge ones (they dominate the bytes, so not thousands of them).
  for (let i = 0; i < 4; i++) {
    out.splice(int(out.length), 0, {
      topic: `replug/good/health`,
      payload: Buffer.alloc(257 * 1024 + i, 0x61),
      expect: 'oversized',
    });
  }
  return out;
}

const WARN = ['oversized', 'not-json', 'schema', 'bad-topic', 'agent-mismatch'];

function tally(list: readonly string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const r of list) t[r] = (t[r] ?? 0) + 1;
  return t;
}

describe('fuzz: hostile payloads', () => {
  it('the pure reducer counts every case under its reason and no agent is created by garbage', () => {
    const all = cases(5000, 42);
    let s = emptyFleet();
    for (const c of all) s = reduce(s, msg(c.topic, c.payload)).state;
    const expected = tally(all.map((c) => c.expect));
    const got = Object.fromEntries(Object.entries(s.counters.rejected).filter(([, n]) => n > 0));
    expect(got).toEqual(expected);
    expect(s.counters.received).toBe(all.length);
    expect(s.agents.size).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  describe('through a real broker and the CLI', () => {
    let broker: RunningBroker;
    beforeAll(async () => {
      broker = await startBroker({ port: 0 });
    });
    afterAll(async () => {
      await broker.close();
    });

    it('survives 3,000 hostile messages, one NDJSON line each with the expected reason', async () => {
      const all = cases(3000, 7);
      const pub = await mqtt.connectAsync(broker.url, { clientId: 'fuzzer' });
      await pub.publishAsync('replug/good/status', JSON.stringify(buildStatus('online', 5, T0)), {
        qos: 1,
        retain: true,
      });
      const run = watch(['--json', '--mqtt', broker.url]);
      await run.until(() => run.stdout.text.includes('"agent":"good"'), 'the good agent');
      // QoS 1 from one client: the broker keeps their order (MQTT 3.1.1 §4.6).
      for (const c of all) await pub.publishAsync(c.topic, c.payload, { qos: 1 });
      await pub.publishAsync('replug/good/info', JSON.stringify(infoFor('good', 5)), { qos: 1 });
      await run.until(() => lines(run.stdout.text).length >= all.length + 2, 'every line', 30_000);
      await pub.endAsync();
      expect(await run.stop()).toBe(0);
      const out = lines(run.stdout.text);
      expect(out).toHaveLength(all.length + 2);
      const isGood = (l: Record<string, unknown>) => l.kind === 'status' || l.kind === 'info';
      const hostile = out.filter((l) => !isGood(l));
      expect(tally(hostile.map((l) => String(l.reason)))).toEqual(tally(all.map((c) => c.expect)));
      expect(hostile.every((l) => l.kind === 'rejected' && WARN.includes(String(l.reason)))).toBe(true);
      // Checked per source in fair turns (src/fleet/intake.ts): each source keeps its own order.
      const bySource = (list: { topic: string; reason: string }[]) => {
        const m = new Map<string, string[]>();
        for (const x of list) {
          const key = x.topic.split('/')[1] ?? '';
          m.set(key, [...(m.get(key) ?? []), x.reason]);
        }
        return m;
      };
      expect(bySource(hostile.map((l) => ({ topic: String(l.topic), reason: String(l.reason) })))).toEqual(
        bySource(all.map((c) => ({ topic: c.topic, reason: c.expect }))),
      );
      expect(out.find((l) => l.kind === 'info')).toMatchObject({ agent: 'good', payload: { session: 5 } });
      expect(run.stderr.text).toBe('');
    });
  });
});
