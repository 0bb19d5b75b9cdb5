/**
 * `replug request` through the CLI entry (main), against `replug broker` run as a command with a users
 * file: an operator asks ten simulated agents, an observer is refused; the subcommand is registered, its
 * --help renders, and bad usage exits 2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { PASSWORD, type SimAgent, simAgent, until, writeUsers } from '../control/harness.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function context(signal = new AbortController().signal) {
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = Readable.from([]);
  return { ctx: { env: {}, stdin, stdout, stderr, signal, cwd: process.cwd() }, stdout, stderr };
}

async function cli(argv: string[]) {
  const run = context();
  const code = await main(argv, run.ctx);
  return { code, out: run.stdout.text, err: run.stderr.text };
}

describe('replug request against replug broker', () => {
  let dir: string;
  let url: string;
  let sims: SimAgent[] = [];
  const stop = new AbortController();
  let broker: Promise<number>;
  let brokerOut: Capture;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'replug-cmd-request-'));
    const users = path.join(dir, 'users');
    const ids = Array.from({ length: 10 }, (_, i) => `node-${i}`);
    await writeUsers(users, [
      ...ids.map((id) => [id, 'agent'] as [string, 'agent']),
      ['ops', 'operator'],
      ['dash', 'observer'],
    ]);
    const run = context(stop.signal);
    brokerOut = run.stdout;
    broker = main(['broker', '--port', '0', '--users', users], run.ctx);
    const listening = await until('broker listening', () =>
      brokerOut.text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; port?: number })
        .find((l) => l.msg.startsWith('broker listening')),
    );
    url = `mqtt://127.0.0.1:${listening.port}`;
    sims = await Promise.all(ids.map((id) => simAgent(url, id)));
  }, 30_000);

  afterAll(async () => {
    for (const s of sims) await s.client.endAsync();
    stop.abort();
    expect(await broker).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('an operator: one line per agent, exit 0', async () => {
    const r = await cli(['request', '--mqtt', url, '-u', 'ops', '-P', PASSWORD, '--all', 'rescan']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(10);
    for (const s of sims) expect(s.ports.calls).toEqual(['rescan']);
  });

  it('an observer: refused by the broker, exit 1, nobody acted', async () => {
    const r = await cli(['request', '--mqtt', url, '-u', 'dash', '-P', PASSWORD, 'node-0', 'rescan']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^replug: broker mqtt:\/\/127\.0\.0\.1:\d+ refused the request: Publish error: Not authorized \(requests need a user whose role is operator/,
    );
    expect(sims[0]?.ports.calls).toEqual(['rescan']);
  });

  it('is a registered command with --help; bad usage exits 2', async () => {
    const help = await cli(['request', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: replug request AGENT ACTION \[options\]/);
    expect(help.out).toContain('republish, rescan, reset, restart, doctor, list, forget');
    const bad = await cli(['request', 'node-0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('give AGENT and ACTION');
  });
});
