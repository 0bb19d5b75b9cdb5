/**
 * `replug broker` and `replug broker passwd` through the CLI function (main), with injected streams:
 * config parsing, the passwd round trip (pipe and TTY), and a real standalone broker serving
 * mosquitto clients until its signal aborts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readUsersFile, verifyPassword } from '../../src/broker/users.js';
import { main } from '../../src/cli/main.js';
import { parseBrokerConfig } from '../../src/commands/broker.js';
import { ConfigError } from '../../src/errors.js';
import { clientsAvailable, mosquittoPub, startSubscriber } from '../helpers/mosquitto-clients.js';

class Capture extends PassThrough {
  text = '';
  constructor() {
    super();
    this.on('data', (d: Buffer) => {
      this.text += d.toString();
    });
  }
}

function context(stdin: NodeJS.ReadableStream & { isTTY?: boolean }, signal = new AbortController().signal) {
  const stdout = new Capture();
  const stderr = new Capture();
  return { ctx: { env: {}, stdin, stdout, stderr, signal, cwd: dir }, stdout, stderr };
}

const piped = (text: string) => Readable.from([Buffer.from(text)]);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'replug-cmd-broker-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseBrokerConfig', () => {
  it('reads flags, aliases and REPLUG_* variables; flags win; paths resolve against cwd', () => {
    const env = { REPLUG_BROKER_HOST: '0.0.0.0', REPLUG_BROKER_PORT: '1999', REPLUG_STATE_DIR: 'state' };
    const { config } = parseBrokerConfig(
      ['--broker-port', '2000', '--users', 'u', '--log-level', 'warn'],
      env,
      '/x',
    );
    expect(config).toEqual({
      broker: { host: '0.0.0.0', port: 2000, usersFile: '/x/u', persistenceDir: '/x/state' },
      logLevel: 'warn',
    });
    const tls = parseBrokerConfig(
      ['--tls-cert', 'c', '--tls-key', 'k', '--tls-ca', 'ca', '--allow-anonymous'],
      {},
      '/x',
    );
    expect(tls.config.broker).toEqual({
      host: '127.0.0.1',
      allowAnonymous: true,
      tls: { cert: '/x/c', key: '/x/k', ca: '/x/ca' },
    });
  });
  it('reports every problem at once', () => {
    let caught: unknown;
    try {
      parseBrokerConfig(
        ['--port', '70000', '--tls-cert', 'c', '--log-level', 'loud'],
        { REPLUG_BROKER_ALLOW_ANONYMOUS: 'maybe' },
        '/',
      );
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      '--port must be between 0 and 65535, got 70000',
      'REPLUG_BROKER_ALLOW_ANONYMOUS must be true or false, got "maybe"',
      '--tls-cert and --tls-key go together',
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });
});

describe('replug broker passwd', () => {
  it('adds, updates and deletes users with the password from a pipe, never from argv', async () => {
    const file = path.join(dir, 'users');
    const add = context(piped('first secret\n'));
    expect(await main(['broker', 'passwd', 'users', 'pi-kitchen'], add.ctx)).toBe(0);
    expect(add.stderr.text).toBe(`replug: added user pi-kitchen in ${file}\n`);
    let users = await readUsersFile(file);
    expect(users.get('pi-kitchen')?.role).toBe('agent');
    expect(await verifyPassword('first secret', users.get('pi-kitchen')?.hash ?? '')).toBe(true);
    expect(await readFile(file, 'utf8')).not.toContain('first secret');

    const update = context(piped('second\r\n'));
    expect(await main(['broker', 'passwd', file, 'pi-kitchen', '--role', 'observer'], update.ctx)).toBe(0);
    users = await readUsersFile(file);
    expect(users.get('pi-kitchen')?.role).toBe('observer');
    expect(await verifyPassword('second', users.get('pi-kitchen')?.hash ?? '')).toBe(true);
    expect(await verifyPassword('first secret', users.get('pi-kitchen')?.hash ?? '')).toBe(false);

    const del = context(piped(''));
    expect(await main(['broker', 'passwd', file, 'pi-kitchen', '--delete'], del.ctx)).toBe(0);
    expect((await readUsersFile(file)).size).toBe(0);
  });

  it('refuses an empty password, a bad username and a bad role with one line each', async () => {
    const empty = context(piped('\n'));
    expect(await main(['broker', 'passwd', 'users', 'a'], empty.ctx)).toBe(2);
    expect(empty.stderr.text).toMatch(/^replug: empty password; nothing changed \(type it at the prompt/);
    const badName = context(piped('x\n'));
    expect(await main(['broker', 'passwd', 'users', 'Bad/Name'], badName.ctx)).toBe(2);
    expect(badName.stderr.text).toMatch(/^replug: invalid username "Bad\/Name"/);
    const badRole = context(piped('x\n'));
    expect(await main(['broker', 'passwd', 'users', 'a', '--role', 'root'], badRole.ctx)).toBe(2);
    expect(badRole.stderr.text).toBe(
      'replug: --role must be agent, observer or operator, got "root"\nreplug: hint: run with --help to see every flag and variable\n',
    );
  });

  it('on a TTY reads twice without echo, honouring backspace', async () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true, rawModes: [] as boolean[] });
    Object.assign(tty, { setRawMode: (m: boolean) => tty.rawModes.push(m) });
    const run = context(tty);
    const done = main(['broker', 'passwd', 'users', 'a'], run.ctx);
    tty.write('hun');
    tty.write('x\u007f');
    tty.write('ter2\r');
    await new Promise((r) => setTimeout(r, 20));
    tty.write('hunter2\r');
    expect(await done).toBe(0);
    expect(tty.rawModes).toEqual([true, false, true, false]);
    expect(run.stderr.text).not.toContain('hun');
    expect(run.stderr.text).toContain('Password for a: \nRepeat password: \n');
    const users = await readUsersFile(path.join(dir, 'users'));
    expect(await verifyPassword('hunter2', users.get('a')?.hash ?? '')).toBe(true);
  });
});

const haveClients = clientsAvailable('replug broker command (test/commands/broker.test.ts)');

describe.skipIf(!haveClients)('replug broker (standalone)', () => {
  it('serves users created by passwd, enforces the ACL, and stops cleanly with exit 0 on abort', async () => {
    for (const [user, role, pw] of [
      ['a', 'agent', 'pw-a'],
      ['dash', 'observer', 'pw-d'],
    ] as const) {
      expect(
        await main(['broker', 'passwd', 'users', user, '--role', role], context(piped(`${pw}\n`)).ctx),
      ).toBe(0);
    }
    const controller = new AbortController();
    const run = context(piped(''), controller.signal);
    const env = { REPLUG_STATE_DIR: 'state' };
    const exit = main(['broker', '--port', '0', '--users', 'users', '--host', '0.0.0.0'], {
      ...run.ctx,
      env,
    });
    const listen = await waitForLog(run.stdout, (l) => String(l.msg).startsWith('broker listening'));
    expect(listen.msg).toMatch(
      /^broker listening on mqtt:\/\/127\.0\.0\.1:\d+ \(anonymous allowed from loopback peers only, observer rights; users from .*users\)$/,
    );
    const port = String(listen.port);
    const at = ['-h', '127.0.0.1', '-p', port];
    const sub = startSubscriber([...at, '-u', 'dash', '-P', 'pw-d', '-t', 'replug/#', '-v']);
    expect(await sub.subscribed()).toEqual([0]);
    await mosquittoPub([...at, '-u', 'a', '-P', 'pw-a', '-t', 'replug/b/status', '-m', 'forged']);
    await mosquittoPub([...at, '-u', 'a', '-P', 'pw-a', '-t', 'replug/a/status', '-m', 'ok']);
    expect(await sub.waitForLines(1)).toEqual(['replug/a/status ok']);
    controller.abort();
    expect(await exit).toBe(0);
    await sub.stop();
    expect(run.stdout.text).toContain('"msg":"broker closed"');
  });

  it('exits 1 with one clear line when beyond loopback without users', async () => {
    const run = context(piped(''));
    expect(await main(['broker', '--host', '0.0.0.0', '--port', '0'], run.ctx)).toBe(1);
    expect(run.stderr.text).toMatch(
      /^replug: refusing to listen on 0\.0\.0\.0 without authentication: .* \(create users .* --allow-anonymous .*\)\n$/,
    );
  });
});

function waitForLog(
  stream: Capture,
  match: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching log line in: ${stream.text}`)), 5000);
    const check = () => {
      for (const raw of stream.text.split('\n').filter(Boolean)) {
        const line = JSON.parse(raw) as Record<string, unknown>;
        if (match(line)) {
          clearTimeout(timer);
          stream.off('data', check);
          resolve(line);
          return;
        }
      }
    };
    stream.on('data', check);
    check();
  });
}
