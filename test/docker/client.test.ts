/**
 * --restart-container against a real Docker engine: a dockerd of the test's own (its own data root, exec
 * root and socket under a temp dir, no iptables, no bridge), a tiny image imported from a root holding the
 * host's `sleep` and the libraries it links. Under CI=true a missing engine fails; elsewhere it skips loudly.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerClient } from '../../src/docker/client.js';
import { ErrorCodes } from '../../src/errors.js';

const dockerd = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));
const ci = process.env.CI === 'true';
if (!dockerd && !ci)
  console.warn('SKIPPING the Docker engine tests: no dockerd here (apt-get install docker.io)');

let dir = '';
let sock = '';
let daemon: ChildProcess | undefined;
const docker = (...args: string[]) =>
  execFileSync('docker', ['-H', `unix://${sock}`, ...args], { encoding: 'utf8', timeout: 60_000 }).trim();

/** A root with the host's sleep and what ldd says it links. */
function sleepRoot(root: string): void {
  const sleep = execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim();
  const libs = execFileSync('ldd', [sleep], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+)/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
  for (const f of [sleep, ...libs]) {
    const to = join(root, f.startsWith('/usr/bin') ? `/bin/${f.split('/').pop()}` : f);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(f, to);
  }
  execFileSync('chmod', ['+x', join(root, 'bin', 'sleep')]);
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!dockerd && !ci)('the Docker Engine API client against a real dockerd', () => {
  beforeAll(async () => {
    if (!dockerd) throw new Error('CI=true and no dockerd: install docker.io (.ci/run APT_PACKAGES)');
    dir = mkdtempSync(join(tmpdir(), 'replug-docker-'));
    sock = join(dir, 'docker.sock');
    daemon = spawn(
      dockerd,
      [
        '--iptables=false',
        '--bridge=none',
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        join(dir, 'exec'),
        '--pidfile',
        join(dir, 'docker.pid'),
        '-H',
        `unix://${sock}`,
      ],
      { stdio: 'ignore' },
    );
    const client = createDockerClient({ socketPath: sock });
    await waitFor('dockerd', () =>
      client.ping().then(
        () => true,
        () => false,
      ),
    );
    const root = join(dir, 'root');
    sleepRoot(root);
    execFileSync('sh', ['-c', `tar -C ${root} -c . | docker -H unix://${sock} import - replug-sleep:test`]);
    docker('run', '-d', '--network', 'none', '--name', 'z2m', 'replug-sleep:test', '/bin/sleep', '3600');
  }, 120_000);

  afterAll(async () => {
    if (sock && daemon) docker('rm', '-f', 'z2m');
    daemon?.kill('SIGTERM');
    if (daemon && daemon.exitCode === null) await new Promise((r) => daemon?.once('exit', r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('restarts a running container: its start time moves on and it runs again', async () => {
    const before = docker('inspect', '-f', '{{.State.StartedAt}}', 'z2m');
    await createDockerClient({ socketPath: sock }).restart('z2m', 1);
    const after = docker('inspect', '-f', '{{.State.StartedAt}} {{.State.Running}}', 'z2m');
    expect(after.split(' ')[1]).toBe('true');
    expect(after.split(' ')[0]).not.toBe(before);
  });

  it('an unknown container is the engine own words, with a hint', async () => {
    const err = await createDockerClient({ socketPath: sock })
      .restart('no-such-container')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.DOCKER_FAILED });
    expect(String((err as Error).message)).toContain('No such container');
  });
});

describe('the Docker Engine API client without an engine', () => {
  it('a missing socket and a socket nobody listens on are REPLUG_DOCKER_UNAVAILABLE, said as such', async () => {
    const d = mkdtempSync(join(tmpdir(), 'replug-nodocker-'));
    try {
      const missing = await createDockerClient({ socketPath: join(d, 'none.sock') })
        .ping()
        .catch((e: unknown) => e);
      expect(missing).toMatchObject({ code: ErrorCodes.DOCKER_UNAVAILABLE });
      expect(String((missing as Error).message)).toContain('no such socket');
      const { createServer } = await import('node:net');
      const path = join(d, 'dead.sock');
      const server = createServer();
      await new Promise<void>((r) => server.listen(path, r));
      await new Promise<void>((r) => server.close(() => r()));
      // The socket file may be removed by close; either way nothing listens.
      const refused = await createDockerClient({ socketPath: path })
        .restart('x')
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: ErrorCodes.DOCKER_UNAVAILABLE });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
