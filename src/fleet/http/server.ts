/**
 * `replug watch --http [HOST:]PORT` (issue 19): the fleet as a web page served by replug itself. The page
 * is three static files in web/ (shipped in the package, no build step, no CDN: it works offline) and
 * reads two endpoints: /api/fleet (a snapshot) and /events (Server-Sent Events: the same snapshot pushed at
 * most 4 times a second while the fleet changes, and once a second for the ages). SSE rather than
 * WebSocket: one direction is all the page needs, it is plain HTTP (node:http, no dependency), and the
 * browser reconnects by itself. Loopback unless a host is given: there is no authentication.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Listen } from '../../metrics/listen.js';
import { closeServer, listen, type RunningHttp } from '../../metrics/server.js';
import type { Clock } from '../../util/clock.js';
import { agentDetail, type SnapshotSources, snapshot } from './snapshot.js';

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** web/ beside package.json, the nearest one up from here (src/, dist/src/ or a private build dir). */
export function webRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from, i = 0; i < 8; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'web', 'index.html'))) return join(dir, 'web');
  }
  throw new Error('web/ assets not found beside the package');
}

export async function startHttpView(
  at: Listen,
  sources: SnapshotSources,
  clock: Clock,
): Promise<RunningHttp> {
  const root = webRoot();
  const clients = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const asset = ASSETS[path];
    if (req.method === 'GET' && asset) {
      const type = TYPES[asset.split('.').pop() ?? ''] ?? 'text/plain';
      res
        .writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' })
        .end(readFileSync(join(root, asset)));
    } else if (req.method === 'GET' && path === '/api/fleet') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(snapshot(sources, clock.now())));
    } else if (req.method === 'GET' && path === '/api/agent') {
      const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
      const lines = agentDetail(sources, id, clock.now());
      if (lines)
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, lines }));
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such agent"}');
    } else if (req.method === 'GET' && path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.write(`data: ${JSON.stringify(snapshot(sources, clock.now()))}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  let sent = -1;
  let tick = 0;
  const push = () => {
    const version = sources.state().version + sources.journal.version;
    tick++;
    // Changes at most every 250 ms; unchanged, once a second (ages move on their own).
    if (clients.size > 0 && (version !== sent || tick % 4 === 0)) {
      sent = version;
      const frame = `data: ${JSON.stringify(snapshot(sources, clock.now()))}\n\n`;
      for (const c of clients) c.write(frame);
    }
    timer = clock.setTimeout(push, 250);
  };
  let timer = clock.setTimeout(push, 250);
  const url = await listen(server, at);
  return {
    url,
    async close() {
      clock.clearTimeout(timer);
      for (const c of clients) c.end();
      await closeServer(server);
    },
  };
}
