/**
 * Fleet control through Mosquitto with the ACL we ship (deploy/mosquitto/pi.acl): an operator's requests
 * reach one agent and the whole fleet (simulated agents and a real one on a fake tree); an observer's and an
 * agent's requests never reach anyone. Mosquitto drops a publish outside the ACL silently with MQTT 3.1.1
 * and answers 0x87 with MQTT 5, so the refusals are checked on the agents' side: nothing acted.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../../src/agent/agent.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { systemClock } from '../../src/util/clock.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { type MosquittoBroker, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { PASSWORD, request, type SimAgent, simAgent, until } from './harness.js';

const available = mosquittoAvailable('fleet control through Mosquitto');
const SIMS = ['pi-01', 'pi-02', 'pi-03'];

describe.runIf(available)('fleet control through Mosquitto with deploy/mosquitto/pi.acl', () => {
  let dir: string;
  let broker: MosquittoBroker;
  let sims: SimAgent[] = [];
  let tree: FakeUsbTree;
  let agent: RunningAgent;
  const as = (user: string) => ['--mqtt', broker.url, '-u', user, '-P', PASSWORD];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replug-fleet-mosq-'));
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, '', { mode: 0o600 });
    for (const u of [...SIMS, 'pi-real', 'operator', 'observer'])
      execFileSync('mosquitto_passwd', ['-b', passwd, u, PASSWORD]);
    const acl = join(dir, 'pi.acl');
    writeFileSync(acl, readFileSync('deploy/mosquitto/pi.acl'));
    broker = await startMosquitto({
      persistence: false,
      extraConfig: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${acl}`],
    });
    sims = await Promise.all(SIMS.map((id, i) => simAgent(broker.url, id, i === 0 ? 4 : 5)));
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 0x1209, pid: 0x0001, serial: 'LAB1' });
    const config = loadAgentConfig(
      [
        ...['--id', 'pi-real', '--mqtt', broker.url, '-u', 'pi-real', '-P', PASSWORD, '--commands'],
        ...[
          '--sysfs-root',
          tree.sysfsRoot,
          '--devfs-root',
          tree.devfsRoot,
          '--state-dir',
          join(dir, 'state'),
        ],
        ...['--target', '1209:0001:LAB1', '--driver', 'examples/drivers/devnode.mjs'],
      ],
      {},
      { hostname: 'ignored' },
    );
    agent = await startAgent(config, {
      clock: systemClock,
      log: pino({ level: 'silent' }),
      env: {},
      hostname: 'h',
      homedir: dir,
      version: '0.0.0-test',
      cwd: process.cwd(),
      runRoot: join(dir, 'run'),
      rootDir: dir,
    });
    await agent.publisher.connected();
    await until('session up', () => agent.sessions.get('1209:0001:LAB1')?.state === 'up');
  }, 60_000);

  afterAll(async () => {
    for (const s of sims) await s.client.endAsync();
    await agent?.stop();
    await broker?.cleanup();
    await tree?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('an operator asks the whole fleet (MQTT 3.1.1 and 5 agents, and a real one): one line each, exit 0', async () => {
    const r = await request([...as('operator'), '--all', 'republish']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.map((l) => l.split(/\s+/)[0]).sort()).toEqual([...SIMS, 'pi-real']);
  });

  it('every action reaches the real agent and answers', async () => {
    const codes: Record<string, string> = {};
    for (const action of ['republish', 'rescan', 'list', 'doctor', 'restart', 'reset', 'forget']) {
      const target = ['restart', 'reset', 'forget'].includes(action) ? ['--target', '1209:0001:LAB1'] : [];
      const r = await request([...as('operator'), 'pi-real', action, ...target, '--json']);
      const body = JSON.parse(r.lines[0] as string) as { status: string; error?: { code: string } };
      codes[action] = body.error?.code ?? body.status;
    }
    expect(codes).toEqual({
      republish: 'ok',
      rescan: 'ok',
      list: 'ok',
      doctor: 'ok',
      restart: 'ok',
      reset: 'REPLUG_HEAL_UNAVAILABLE',
      forget: 'REPLUG_TARGET_CONFIGURED',
    });
  });

  it('an observer and an agent cannot ask: the broker keeps their requests from every agent', async () => {
    const before = sims.map((s) => s.ports.calls.length);
    const observer = await request([...as('observer'), 'pi-01', 'rescan', '--timeout', '1']);
    expect(observer.code).not.toBe(0);
    const agentAsks = await request([...as('pi-02'), '--all', 'rescan', '--timeout', '1']);
    expect(agentAsks.code).not.toBe(0);
    // Not even under its own root: replug/<id>/request/ is for operators (the old readwrite replug/%u/# let it).
    const itself = await request([...as('pi-02'), 'pi-02', 'rescan', '--timeout', '1']);
    expect(itself.code).not.toBe(0);
    // MQTT 3.1.1: Mosquitto drops the publish without a word; the agents' silence is the refusal.
    const v4 = await mqtt.connectAsync(broker.url, {
      protocolVersion: 4,
      username: 'observer',
      password: PASSWORD,
    });
    await v4.publishAsync('replug/_fleet/request/rescan', '{}', { qos: 1 });
    await v4.endAsync();
    // A request the operator sends after them is answered; by then the refused ones would have been.
    const after = await request([...as('operator'), 'pi-01', 'list']);
    expect(after.code).toBe(0);
    expect(sims.map((s) => s.ports.calls.filter((c) => c === 'rescan').length)).toEqual(before.map(() => 0));
    expect((sims[0] as SimAgent).ports.calls.at(-1)).toBe('list');
  });
});
