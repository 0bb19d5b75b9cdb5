// A dockerd of the lab's own, for the suites that need the real engine (OCI spec fixtures, the image test):
// its own data root, exec root, pidfile and socket, so it never collides with another daemon on the machine,
// no iptables and no bridge (there is none here: containers use --network none, host or container:NAME).
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LabPrerequisiteError, run, sleep, which } from './util.mjs';

/**
 * Starts dockerd. `name` picks the roots (/var/lib/replug-NAME, /run/replug-NAME…); `runtimes` maps extra
 * OCI runtime names to executables (`--add-runtime`). Resolves { host, docker(args), stop() }.
 */
export async function startDockerd({ name, runtimes = {}, args = [], logFile }) {
  for (const bin of ['dockerd', 'docker', 'runc', 'containerd']) {
    if (!which(bin)) throw new LabPrerequisiteError(`${bin} not found`, 'apt-get install docker.io runc');
  }
  const sock = `/run/replug-${name}.sock`;
  const dataRoot = `/var/lib/replug-${name}`;
  const execRoot = `/run/replug-${name}`;
  const pidfile = `/run/replug-${name}.pid`;
  mkdirSync(dataRoot, { recursive: true });
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const argv = [
    '--iptables=false',
    '--bridge=none',
    '--data-root',
    dataRoot,
    '--exec-root',
    execRoot,
    '--pidfile',
    pidfile,
    '-H',
    `unix://${sock}`,
    ...Object.entries(runtimes).map(([n, p]) => `--add-runtime=${n}=${p}`),
    ...args,
  ];
  const daemon = spawn('dockerd', argv, { stdio: ['ignore', out, out] });
  const host = `unix://${sock}`;
  const env = { ...process.env, DOCKER_HOST: host };
  const docker = (dargs, opts = {}) => run('docker', dargs, { env, ...opts });
  let exited = null;
  daemon.on('exit', (code) => {
    exited = code;
  });
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`dockerd exited ${exited} at start (log: ${logFile ?? 'none'})`);
    if ((await docker(['version', '--format', '{{.Server.Version}}'], { check: false })).code === 0) break;
    if (i > 240) {
      daemon.kill('SIGKILL');
      throw new Error(`dockerd did not answer on ${sock} within 60 s`);
    }
    await sleep(250);
  }
  const stop = async () => {
    if (exited !== null) return;
    const closed = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    const t = setTimeout(() => daemon.kill('SIGKILL'), 20000);
    await closed;
    clearTimeout(t);
    rmSync(sock, { force: true });
  };
  return { host, env, docker, stop, dataRoot, execRoot };
}

/** `docker import` of a directory as an image (no registry here). */
export async function importDir(docker, dir, tag) {
  const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const imp = spawn('docker', ['import', '-', tag], {
    env: { ...process.env, DOCKER_HOST: docker.host },
    stdio: [tar.stdout, 'pipe', 'pipe'],
  });
  let err = '';
  imp.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((r) => imp.on('close', r));
  if (code !== 0) throw new Error(`docker import ${tag}: ${err.trim()}`);
}

export const dockerdLog = (dir, name) => join(dir, `dockerd-${name}.log`);
