/**
 * Issue 11: an agent refused because its id is not its username read only "Not authorized". The broker
 * now names the rule in the CONNACK's Reason String, and the agent's one refusal line carries it.
 */
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { startBroker } from '../../../src/broker/broker.js';
import { createPublisher } from '../../../src/mqtt/publisher.js';
import { tempDir, usersFile } from '../fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("an agent whose id is not its username logs the broker's reason", async () => {
  const t = await tempDir('replug-refusal-');
  cleanups.push(t.cleanup);
  const file = await usersFile(t.dir, [{ username: 'pi-a', role: 'agent', password: 'pa' }]);
  const broker = await startBroker({ port: 0, usersFile: file });
  cleanups.push(() => broker.close());
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const p = createPublisher({
    url: broker.url,
    username: 'pi-a',
    password: 'pa',
    agent: 'pi-b',
    session: 1,
    runtime: 'native',
    stateDir: t.dir,
    reconnectPeriodMs: 100,
    protocol: 5,
    log,
  });
  cleanups.push(() => p.stop());
  await p.start();
  const refused = () => lines.find((l) => /refused the connection/.test(l.msg));
  while (!refused()) await new Promise((r) => setTimeout(r, 20));
  expect(refused()?.msg).toContain("an agent's id must be its username (pi-a)");
  expect(refused()?.msg).toContain('(0x87)');
});
