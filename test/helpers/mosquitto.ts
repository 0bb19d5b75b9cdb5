/**
 * A real Mosquitto broker (Debian package `mosquitto`) for integration tests: its own temp dir and config,
 * a free loopback port that stays the same across stop/kill/restart (so clients reconnect to it), and its
 * log kept for failure messages.
 *
 * Prerequisite policy (team rule): `mosquittoAvailable(suite)` throws under CI=true when the binary is
 * missing and returns false (with a loud message) on a developer machine so the suite can skip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, requireExecutables } from './mosquitto-clients.js';

export function mosquittoAvailable(suite: string): boolean {
  return requireExecutables(
    ['mosquitto', 'mosquitto_sub', 'mosquitto_pub'],
    suite,
    'mosquitto mosquitto-clients',
  );
}

export interface MosquittoOptions {
  /** Fixed port; a free loopback port by default. */
  port?: number;
  /** Keep retained messages and persistent sessions on disk across restarts (default true). */
  persistence?: boolean;
  /** Extra lines appended to the config (e.g. `password_file ...`, `allow_anonymous false`). */
  extraConfig?: readonly string[];
}

export interface MosquittoBroker {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly url: string;
  /** The broker's temp dir (config, persistence db). */
  readonly dir: string;
  readonly running: boolean;
  /** Everything the broker logged so far (all runs). */
  log(): string;
  /** Starts it again on the same port after stop()/kill(). */
  start(): Promise<void>;
  /** SIGTERM and wait: a clean shutdown (persistence written). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash (connections reset, nothing written). */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the broker if running and removes its temp dir. */
  cleanup(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connect to the port succeeds (the broker listens), rejects after timeoutMs. */
async function waitForListening(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error('mosquitto exited before listening');
    if (Date.now() > deadline) throw new Error(`mosquitto not listening on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const binary = findExecutable('mosquitto');
  if (!binary) throw new Error('mosquitto not installed (apt-get install -y mosquitto)');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'replug-mosquitto-'));
  const port = options.port ?? (await freePort());
  const persistence = options.persistence ?? true;
  const config = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    `persistence ${persistence}`,
    `persistence_location ${dir}/`,
    // Mosquitto writes its database on clean shutdown and every autosave_interval; by default a kill -9
    // loses what it acknowledged since (a PUBACK is not a disk write). The crash tests check replug's
    // queue, not Mosquitto's crash durability, so the test broker saves after every change: with
    // autosave_on_changes, autosave_interval counts changes (messages queued, subscriptions, retained).
    'autosave_on_changes true',
    'autosave_interval 1',
    // Started as root, mosquitto drops to user `mosquitto`, which cannot write our 0700 temp dir: stay
    // whoever we are (ignored when not root).
    `user ${os.userInfo().username}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    'log_timestamp_format %H:%M:%S',
    ...(options.extraConfig ?? []),
  ].join('\n');
  const configPath = path.join(dir, 'mosquitto.conf');
  await writeFile(configPath, `${config}\n`);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let logText = '';

  async function start(): Promise<void> {
    if (child) throw new Error('mosquitto already running');
    const proc = spawn(binary as string, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let alive = true;
    const append = (d: Buffer) => {
      logText += d.toString('utf8');
    };
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        alive = false;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    try {
      await waitForListening(port, 10_000, () => alive);
    } catch (err) {
      proc.kill('SIGKILL');
      await exited;
      throw new Error(`${(err as Error).message}; log:\n${logText}`);
    }
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill(sig);
    await exited;
  }

  await start();
  return {
    host: '127.0.0.1',
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    get running() {
      return child !== undefined;
    },
    log: () => logText,
    start,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await start();
    },
    async cleanup() {
      await signal('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
