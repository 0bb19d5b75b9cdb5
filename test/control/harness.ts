/**
 * What the fleet-control suites share: a users file with agents, an observer and an operator; simulated
 * agents (a Responder on fake ports over a real MQTT.js client, as the commands feature runs it); and
 * `replug request` run in-process with its output captured.
 */
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import type { Role } from '../../src/broker/acl.js';
import { hashPassword, type UserRecord, writeUsersFile } from '../../src/broker/users.js';
import type { CommandContext } from '../../src/cli/context.js';
import { requestCommand } from '../../src/commands/request.js';
import { controlTopics } from '../../src/control/contract.js';
import { Responder } from '../../src/control/responder.js';
import { type FakePorts, fakePorts } from './fake-ports.js';

export const PASSWORD = 'pw';
const FAST = { N: 1024, r: 8, p: 1 };

export async function writeUsers(file: string, users: [string, Role][]): Promise<void> {
  const hash = await hashPassword(PASSWORD, FAST);
  const records: UserRecord[] = users.map(([username, role]) => ({ username, role, hash }));
  await writeUsersFile(file, records);
}

export interface SimAgent {
  id: string;
  client: MqttClient;
  ports: FakePorts;
  answered: number;
}

/** An agent that answers like the real one, on fake ports; it publishes a retained online status. */
export async function simAgent(url: string, id: string, protocolVersion: 4 | 5 = 5): Promise<SimAgent> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion,
    clientId: `replug-${id}`,
    username: id,
    password: PASSWORD,
    reconnectPeriod: 0,
  });
  const ports = fakePorts();
  const sim: SimAgent = { id, client, ports, answered: 0 };
  const responder = new Responder({ agent: id, ports, clock: { now: () => Date.now() } });
  client.on('message', (topic, payload, packet) => {
    void responder
      .handle({ topic, payload, retain: packet.retain, correlationData: packet.properties?.correlationData })
      .then(async (out) => {
        if (out.kind !== 'answered') return;
        for (const p of out.publishes) {
          sim.answered++;
          await client.publishAsync(p.topic, p.payload, { qos: 1 });
        }
      });
  });
  await client.subscribeAsync(controlTopics.agentFilters(id), { qos: 1 });
  await client.publishAsync(
    `replug/${id}/status`,
    JSON.stringify({ state: 'online', session: 1, ts: Date.now() }),
    {
      qos: 1,
      retain: true,
    },
  );
  return sim;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs `replug request ARGV...` in this process: its exit code, stdout and stderr. */
export async function request(
  argv: string[],
): Promise<{ code: number; out: string; err: string; lines: string[] }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const ctx = {
    argv,
    env: {},
    stdout,
    stderr,
    stdin: process.stdin,
    signal: new AbortController().signal,
    cwd: process.cwd(),
  } as unknown as CommandContext;
  let code: number;
  try {
    code = await requestCommand.run(ctx);
  } catch (err) {
    stderr.text += `${err instanceof Error ? err.message : String(err)}\n`;
    code = (err as { code?: string }).code === 'REPLUG_CONFIG_INVALID' ? 2 : 1;
  }
  return { code, out: stdout.text, err: stderr.text, lines: stdout.text.split('\n').filter(Boolean) };
}

export async function until<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
