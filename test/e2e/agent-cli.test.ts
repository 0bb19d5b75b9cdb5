/**
 * The user-facing edges of `replug agent` run as a real process: help, bad flags and variables (one clear
 * line, exit 2, no stack trace), an unreachable broker (keep running, say so once, deliver later), an
 * embedded-broker port already taken (one line with the way out, exit 1), and a host without USB.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validatePayload } from '../../src/mqtt/schema.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { type AgentProcess, ensureBuilt, runCli, spawnAgent, spawnCli } from '../helpers/agent-process.js';
import { mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';

const STACK_FRAME = /^\s+at .+[(:]\d+/m;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** stderr split into lines: exactly one error line, optionally followed by `replug: hint: ...`. */
function errorLines(stderr: string): { error: string; rest: string[] } {
  const lines = stderr.trim().split('\n');
  return { error: lines[0] ?? '', rest: lines.slice(1) };
}

function expectOneClearError(result: { code: number | null; stderr: string; stdout: string }, code: number) {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stderr).not.toMatch(STACK_FRAME);
  const { error, rest } = errorLines(result.stderr);
  expect(error.startsWith('replug: ')).toBe(true);
  for (const line of rest) expect(line).toMatch(/^replug: hint: /);
  expect(rest.length).toBeLessThanOrEqual(1);
  return error;
}

describe('replug agent as a process: flags and errors', () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 240_000);

  it('--help prints the agent usage on stdout and exits 0', async () => {
    const result = await runCli(['agent', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: replug agent/);
    for (const flag of ['--mqtt', '--broker-port', '--target', '--state-dir', 'TEST_VID'])
      expect(result.stdout).toContain(flag);
    expect(result.stderr).toBe('');
  });

  it('an unknown flag is one line (plus a hint), exit 2, no stack trace, no agent started', async () => {
    const result = await runCli(['agent', '--bogus-flag']);
    const error = expectOneClearError(result, 2);
    expect(error).toContain('--bogus-flag');
    expect(result.logs).toEqual([]);
  });

  it('a bad --target names the flag and the value; exit 2', async () => {
    const result = await runCli(['agent', '--target', 'zz:1']);
    const error = expectOneClearError(result, 2);
    expect(error).toContain('--target');
    expect(error).toContain('zz');
  });

  it('TEST_VID=70000 (out of the seed range 0-65535) names the variable; exit 2', async () => {
    const result = await runCli(['agent'], { env: { TEST_VID: '70000', TEST_PID: '1' } });
    const error = expectOneClearError(result, 2);
    expect(error).toContain('TEST_VID');
    expect(error).toContain('70000');
    expect(result.stderr).not.toContain('TEST_PID');
  });

  it('--mqtt http://x is refused before anything starts; exit 2', async () => {
    const result = await runCli(['agent', '--mqtt', 'http://x']);
    const error = expectOneClearError(result, 2);
    expect(error).toContain('--mqtt');
    expect(error).toContain('http://');
    expect(result.logs).toEqual([]);
  });
});

describe('replug agent as a process: brokers and hosts', () => {
  let tree: FakeUsbTree;
  let stateDir: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    await ensureBuilt();
  }, 240_000);
  beforeEach(async () => {
    tree = await FakeUsbTree.create();
    stateDir = await mkdtemp(join(tmpdir(), 'replug-e2e-cli-'));
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

  it.skipIf(!mosquittoAvailable('e2e: agent with an unreachable broker'))(
    'an unreachable --mqtt broker: keeps running, says so once, delivers when the broker appears on that port',
    async () => {
      // A Mosquitto that knows a durable subscriber, then goes away: its port is closed while the agent
      // starts, and the same broker (same port, persisted session) comes back later.
      const broker = await startMosquitto();
      cleanups.push(() => broker.cleanup());
      const received: { topic: string; json: Record<string, unknown> }[] = [];
      const sub = mqtt.connect(broker.url, {
        protocolVersion: 5,
        clientId: 'e2e-cli-late',
        clean: false,
        properties: { sessionExpiryInterval: 300 },
        reconnectPeriod: 200,
      });
      cleanups.push(() => sub.endAsync(true));
      sub.on('message', (topic, payload) => received.push({ topic, json: JSON.parse(payload.toString()) }));
      await new Promise<void>((resolve) => sub.once('connect', () => resolve()));
      await sub.subscribeAsync('replug/e2e-late/#', { qos: 1 });
      await broker.stop(); // clean stop: the subscriber's session is written to disk

      const startedAt = Date.now();
      const proc = track(
        spawnAgent({
          id: 'e2e-late',
          sysfsRoot: tree.sysfsRoot,
          devfsRoot: tree.devfsRoot,
          stateDir,
          mqtt: broker.url,
        }),
      );
      await proc.waitForLog((l) => /^cannot reach the broker/.test(l.msg), 15_000, 'broker unreachable');
      await proc.waitForLog((l) => /^agent e2e-late started/.test(l.msg), 15_000, 'agent started');
      await tree.plug({ vid: '1209', pid: '0001', serial: 'LATE' });
      await proc.waitForLog(
        (l) => l.event === 'device.added',
        10_000,
        'device.added while the broker is away',
      );
      await sleep(Math.max(0, startedAt + 3500 - Date.now())); // three retries at the 1 s reconnect period
      expect(proc.exitStatus()).toBeNull();
      expect(proc.messages(/cannot reach the broker/)).toHaveLength(1);
      expect(proc.logs.filter((l) => l.level >= 40 && /broker/.test(l.msg))).toHaveLength(1);

      await broker.start();
      await proc.waitForLog((l) => /is back; delivering queued events$/.test(l.msg), 15_000, 'broker back');
      const deadline = Date.now() + 15_000;
      let added: (typeof received)[number] | undefined;
      while (!added && Date.now() < deadline) {
        added = received.find((m) => m.topic === 'replug/e2e-late/event' && m.json.type === 'device.added');
        if (!added) await sleep(25);
      }
      expect(added, JSON.stringify(received.map((m) => m.topic))).toBeDefined();
      expect((added!.json.device as { serial: string }).serial).toBe('LATE');
      expect(validatePayload('event', added!.json)).toEqual({ ok: true });
      expect(proc.messages(/cannot reach the broker/)).toHaveLength(1);
      expect(await proc.stop()).toEqual({ code: 0, signal: null });
    },
    60_000,
  );

  it('embedded broker port already in use: one line suggesting --mqtt or --broker-port, exit 1', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => squatter.close(resolve)));
    const port = (squatter.address() as net.AddressInfo).port;
    const result = await runCli(
      [
        'agent',
        '--log-format',
        'json',
        '--sysfs-root',
        tree.sysfsRoot,
        '--devfs-root',
        tree.devfsRoot,
        '--state-dir',
        stateDir,
        '--broker-port',
        String(port),
      ],
      { env: { HOME: stateDir } },
    );
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`port ${port}`);
    expect(lines[0]).toContain('in use');
    expect(lines[0]).toContain(`--mqtt mqtt://127.0.0.1:${port}`);
    expect(lines[0]).toContain('--broker-port');
  });

  it.skipIf(existsSync('/sys/bus/usb'))(
    'on this host without a USB bus (real /sys): says "no USB bus" once and keeps running',
    async () => {
      const proc = track(
        spawnCli(
          [
            'agent',
            '--log-format',
            'json',
            '--broker-port',
            '0',
            '--state-dir',
            stateDir,
            '--id',
            'e2e-nobus',
          ],
          { env: { HOME: stateDir } },
        ),
      );
      const startedAt = Date.now();
      await proc.waitForLog((l) => /^no USB bus/.test(l.msg), 15_000, 'the no-bus warning');
      await proc.waitForLog((l) => /^agent e2e-nobus started/.test(l.msg), 15_000, 'agent started');
      await sleep(Math.max(0, startedAt + 3500 - Date.now())); // several sysfs rescans (1 s default)
      expect(proc.exitStatus()).toBeNull();
      expect(proc.messages(/no USB bus/)).toHaveLength(1);
      expect(proc.logs.filter((l) => l.level >= 50)).toEqual([]);
      expect(await proc.stop()).toEqual({ code: 0, signal: null });
    },
    30_000,
  );
});
