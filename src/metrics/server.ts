/**
 * `--metrics [HOST:]PORT`: /metrics over plain HTTP (node:http; the text format Prometheus scrapes).
 * prom-client is imported here, lazily, only when the flag is given (issue 17: an agent without
 * --metrics does not pay its memory). Loopback unless a host is named.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FleetSource, fleetRegistry } from './fleet-metrics.js';
import type { Listen } from './listen.js';

export { type Listen, parseListen } from './listen.js';

export interface RunningHttp {
  /** The address bound (port resolved when 0 was asked), as a URL. */
  url: string;
  close(): Promise<void>;
}

export async function listen(server: Server, at: Listen): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startMetricsServer(
  at: Listen,
  source: FleetSource,
  maxAgents?: number,
): Promise<RunningHttp> {
  const prom = await import('prom-client');
  const { registry, close } = fleetRegistry(prom, source, maxAgents);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  const url = await listen(server, at);
  return {
    url,
    async close() {
      close();
      await closeServer(server);
    },
  };
}
