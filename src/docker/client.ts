/**
 * The Docker Engine API over its unix socket, for `--restart-container` (issue 15). Node's own http with
 * `socketPath` rather than a library (dockerode pulls docker-modem, ssh2 and tar-fs for what is here two
 * requests): POST /containers/{name}/restart and GET /_ping. Unversioned paths, which Docker and Podman's
 * compatible service (podman system service, /run/podman/podman.sock) both accept.
 */
import { request } from 'node:http';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

export interface DockerClient {
  ping(): Promise<void>;
  /** Restarts `name` (Docker stops it with `stopSeconds` grace first); resolves when the engine answered. */
  restart(name: string, stopSeconds?: number): Promise<void>;
}

export interface DockerClientOptions {
  socketPath: string;
  /** Bound on one request (default 60 s: a restart waits for the container to stop). */
  timeoutMs?: number;
}

function unavailable(socketPath: string, err: unknown): ReplugError {
  const errno = errnoOf(err);
  const why =
    errno === 'ENOENT'
      ? 'no such socket'
      : errno === 'ECONNREFUSED'
        ? 'nothing listens on it'
        : errno === 'EACCES'
          ? 'permission denied'
          : (errno ?? String(err));
  return new ReplugError(ErrorCodes.DOCKER_UNAVAILABLE, `the Docker Engine API at ${socketPath}: ${why}`, {
    hint:
      'start dockerd (or `podman system service`), or point --docker-socket at its socket; in a container ' +
      'bind-mount it: -v /var/run/docker.sock:/var/run/docker.sock',
    cause: err,
  });
}

function call(
  o: DockerClientOptions,
  method: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: o.socketPath, method, path, timeout: o.timeoutMs ?? 60_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => reject(unavailable(o.socketPath, e)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(unavailable(o.socketPath, e)));
    req.end();
  });
}

/** The engine's own message (`{"message": "No such container: x"}`), else the status. */
function engineMessage(r: { status: number; body: string }): string {
  try {
    const m = (JSON.parse(r.body) as { message?: unknown }).message;
    if (typeof m === 'string') return m.slice(0, 300);
  } catch {
    // Not JSON.
  }
  return `HTTP ${r.status}`;
}

export function createDockerClient(o: DockerClientOptions): DockerClient {
  return {
    async ping() {
      const r = await call(o, 'GET', '/_ping');
      if (r.status !== 200) throw unavailable(o.socketPath, new Error(engineMessage(r)));
    },
    async restart(name, stopSeconds = 10) {
      const r = await call(o, 'POST', `/containers/${encodeURIComponent(name)}/restart?t=${stopSeconds}`);
      if (r.status === 204) return;
      throw new ReplugError(ErrorCodes.DOCKER_FAILED, `restarting container ${name}: ${engineMessage(r)}`, {
        hint: r.status === 404 ? 'check the name with `docker ps -a`' : 'see the engine log',
      });
    },
  };
}
