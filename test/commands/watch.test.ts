/**
 * `replug watch` end to end: a real Aedes (broker/broker.ts) on port 0, simulated agents as real MQTT.js
 * clients publishing schema-valid payloads, and the CLI called as a function with captured streams.
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { agentTopics } from '../../src/mqtt/topics.js';
import { lines, watch } from '../fleet/cli.js';
import {
  buildStatus,
  CONTAINER,
  device,
  eventFor,
  NATIVE,
  type SimAgent,
  simAgent,
  T0,
} from '../fleet/sim.js';

/** A port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

let broker: RunningBroker;
let agents: SimAgent[];
beforeEach(async () => {
  broker = await startBroker({ port: 0 });
  agents = [];
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.end().catch(() => undefined)));
  await broker.close();
});

async function fleet() {
  const native = await simAgent(broker.url, 'pi-native', 3);
  const box = await simAgent(broker.url, 'pi-box', 1);
  agents.push(native, box);
  await native.census(NATIVE);
  await box.census(CONTAINER, {
    state: 'backoff',
    reconnects: { count: 4, ok: 1, failed: 3, p50Ms: 900, p95Ms: 900 },
  });
}

describe('replug watch --once', () => {
  it('prints the retained census and exits 0 when every expected agent is online', async () => {
    await fleet();
    const run = watch([
      '--once',
      '--mqtt',
      broker.url,
      '--expect',
      'pi-native',
      '--expect',
      'pi-box',
      '--no-color',
    ]);
    expect(await run.code).toBe(0);
    const out = run.stdout.text;
    expect(out).toContain(broker.url);
    expect(out).toMatch(/● pi-native +online s3/);
    expect(out).toMatch(/● pi-box +online s1 +1209:0001:ABC123 +backoff/);
    expect(out).toContain('docker (container-hostnet)');
    expect(out).toContain('warnings: none');
    expect(run.stderr.text).toBe('');
  });

  it('exits 1 naming the agent when an expected one is missing or offline', async () => {
    await fleet();
    await agents[1]!.publish(
      agentTopics('pi-box').status,
      buildStatus('offline', 1, T0, { reason: 'stopped' }),
    );
    const run = watch(['--once', '--mqtt', broker.url, '--expect', 'pi-box', '--expect', 'pi-gone']);
    expect(await run.code).toBe(1);
    expect(run.stderr.text).toContain(
      `replug: expected agent pi-box on ${broker.url} offline since session 1`,
    );
    expect(run.stderr.text).toContain('replug: expected agent pi-gone is missing (no retained status)');
  });

  it('--compare prints the figures per runtime for the shared target', async () => {
    await fleet();
    const run = watch(['--once', '--compare', '--mqtt', broker.url]);
    expect(await run.code).toBe(0);
    const row = run.stdout.text.split('\n').find((l) => l.trim().startsWith('1209:0001:ABC123'));
    // fixture snapshot: 2 of 3 ok, p50 12, p95 40 (native); the container agent: 1 of 4, 900/900.
    expect(row).toMatch(/2\/3 \(67%\) 12\/40ms +1\/4 \(25%\) 900\/900ms/);
  });

  it('reports an unreachable broker in one line and still prints the census of the other; exit 1', async () => {
    await fleet();
    const dead = `mqtt://127.0.0.1:${await deadPort()}`;
    const run = watch(['--once', '--mqtt', dead, '--mqtt', broker.url, '-W', '3']);
    expect(await run.code).toBe(1);
    expect(run.stderr.text.trim().split('\n')).toEqual([`replug: ${dead} unreachable: ECONNREFUSED`]);
    expect(run.stdout.text).toContain('pi-native');
  });

  it('rejects bad flags with every problem at once (exit 2)', async () => {
    const run = watch(['--mqtt', 'http://x', '--expect', 'Bad_Id', '--target', 'zz']);
    expect(await run.code).toBe(2);
    expect(run.stderr.text).toContain('agent id "Bad_Id" is not valid');
    expect(run.stderr.text).toContain('--expect needs --once');
  });
});

describe('replug watch --json', () => {
  it('streams one normalized line per message and marks a late will', async () => {
    const old = await simAgent(broker.url, 'pi', 1);
    agents.push(old);
    await old.census();
    const run = watch(['--json', '--mqtt', broker.url]);
    await run.until(() => run.stdout.text.split('\n').length > 5, 'the retained census');
    // The agent restarts (session 2) while its old connection lingers; the old one then dies and the
    // broker delivers its will late (docs/topics.md).
    const fresh = await simAgent(broker.url, 'pi', 2);
    agents.push(fresh);
    await fresh.census();
    old.kill();
    await fresh.publish(
      agentTopics('pi').event,
      eventFor(
        'reconnect.succeeded',
        { target: '1209:0001:ABC123', attempts: 1, device, durationMs: 7 },
        1,
        2,
      ),
      false,
    );
    await run.until(
      () => run.stdout.text.includes('"lateWill":true') && run.stdout.text.includes('"durationMs":7'),
      'late will and event',
    );
    const out = lines(run.stdout.text);
    expect(out.slice(0, 5).map((l) => [l.agent, l.kind, l.retained])).toEqual([
      ['pi', 'status', true],
      ['pi', 'info', true],
      ['pi', 'devices', true],
      ['pi', 'target', true],
      ['pi', 'health', true],
    ]);
    const will = out.find((l) => l.lateWill === true)!;
    expect(will).toMatchObject({
      broker: broker.url,
      kind: 'status',
      payload: { state: 'offline', session: 1 },
    });
    expect(out.find((l) => l.kind === 'event')).toMatchObject({
      agent: 'pi',
      retained: false,
      payload: { type: 'reconnect.succeeded', seq: 1 },
    });
    expect(run.stdout.text.endsWith('\n')).toBe(true);
    expect(await run.stop()).toBe(0);
  });
});

describe('replug watch: a broker that drops', () => {
  it('reports the loss once, reconnects, and receives again', async () => {
    const port = broker.address.port;
    const run = watch(['--json', '--mqtt', broker.url]);
    const first = await simAgent(broker.url, 'pi', 1);
    await first.census();
    await run.until(() => run.stdout.text.includes('"kind":"health"'), 'first census');
    await first.end();
    await broker.close();
    await run.until(() => run.stderr.text.includes('lost'), 'the loss line');
    broker = await startBroker({ port });
    const again = await simAgent(broker.url, 'pi', 2);
    agents.push(again);
    await run.until(() => run.stderr.text.includes('connected again'), 'the reconnect', 15_000);
    await again.census();
    await run.until(
      () => lines(run.stdout.text).some((l) => l.kind === 'status' && l.payload?.session === 2),
      'the second census',
    );
    expect(run.stderr.text.trim().split('\n')).toEqual([
      `replug: ${broker.url} lost; retrying every 1s`,
      `replug: ${broker.url} connected again`,
    ]);
    expect(await run.stop()).toBe(0);
  });
});
