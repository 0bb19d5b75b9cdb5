/**
 * Issue 12, what `replug watch` holds and says: one entry per agent id with no cap (100,000 fake ids took
 * it from 87 to 264 MB), and a refused SUBACK ignored (exit 0, nothing said).
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { agentId, emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { renderFrame } from '../../src/fleet/render.js';
import { tempDir, usersFile } from '../broker/fixtures.js';
import { lines, watch } from '../fleet/cli.js';
import { buildHealth, buildStatus, health, msg, T0 } from '../fleet/sim.js';

const A = 'mqtt://a:1883';

describe('watch limits (issue 12)', () => {
  let broker: RunningBroker | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await broker?.close();
    await cleanup?.();
    broker = undefined;
    cleanup = undefined;
  });

  it('100,000 fake ids: at most 10,000 agents kept, real online agents kept, and it says so', () => {
    let s = emptyFleet();
    s = reduce(s, msg('replug/real/status', buildStatus('online', 1, T0), { at: 1 })).state;
    const hp = JSON.stringify(
      buildHealth(health, { depth: 0, dropped: 0, capacity: 1 }, { connected: true, reconnects: 0 }, 1, T0),
    );
    for (let i = 0; i < 100_000; i++) {
      // Half say they are online, half only publish health (evictable, least recently seen first).
      const payload = i % 2 === 0 ? JSON.stringify(buildStatus('online', 1, T0)) : hp;
      const topic = i % 2 === 0 ? `replug/fake-${i}/status` : `replug/fake-${i}/health`;
      s = reduce(s, msg(topic, payload, { at: 10 + i })).state;
    }
    expect(s.agents.size).toBeLessThanOrEqual(10_000);
    expect(s.agents.get(agentId(A, 'real'))?.status?.state).toBe('online');
    expect(s.counters.rejected['agent-limit'] + s.counters.evicted).toBeGreaterThan(80_000);
    const frame = renderFrame(s, { width: 200, color: false, now: T0, maxAgents: 10_000 });
    expect(frame).toMatch(
      /agent limit 10000 \(--max-agents\): \d+ messages of new agents dropped, \d+ agents not online forgotten/,
    );
  });

  it('--max-agents sets the bound', async () => {
    broker = await startBroker({ port: 0 });
    const pub = await mqtt.connectAsync(broker.url);
    for (let i = 0; i < 5; i++)
      await pub.publishAsync(`replug/a${i}/status`, JSON.stringify(buildStatus('online', 1, T0)), {
        qos: 1,
        retain: true,
      });
    await pub.endAsync();
    const run = watch(['--once', '--json', '--max-agents', '3', '--mqtt', broker.url, '-W', '3']);
    expect(await run.code).toBe(0);
    const out = lines(run.stdout.text);
    expect(out.filter((l) => l.kind === 'status')).toHaveLength(3);
    expect(out.filter((l) => l.reason === 'agent-limit')).toHaveLength(2);
  });

  it('a refused SUBACK (an agent-role user) is said per broker, and --once exits 1', async () => {
    const tmp = await tempDir('replug-hostile-suback-');
    cleanup = tmp.cleanup;
    const users = await usersFile(tmp.dir, [{ username: 'pi1', role: 'agent', password: 'pw' }]);
    broker = await startBroker({ port: 0, usersFile: users });
    const run = watch(['--once', '--mqtt', broker.url, '-u', 'pi1', '-P', 'pw', '-W', '3']);
    expect(await run.code).toBe(1);
    expect(run.stderr.text).toMatch(
      new RegExp(
        `^replug: ${broker.url.replace(/[/.]/g, '\\$&')} subscription refused: replug/\\+/# \\(0x8[07] `,
        'm',
      ),
    );
    expect(run.stdout.text).toMatch(/subscription refused/);
  });
});
