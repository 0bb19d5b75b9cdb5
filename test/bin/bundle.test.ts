/**
 * The published bin's bundle (scripts/bundle.mjs, issue 17 start-up): made from a private tsc build, it
 * must run the agent to `started` and a clean stop, and keep lazy what the source loads lazily. A chunk
 * that the entry reaches by static imports is evaluated at every start of every command, so the embedded
 * broker, the USB side, the metrics and the pretty printer must stay behind a dynamic import (they are
 * megabytes of RSS an agent with --mqtt, or `replug list`, never uses).
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { BUILD_DIR, ensureBuilt, REPO_ROOT } from '../helpers/agent-process.js';

let dist: string;

/**
 * Runs the bundled bin until `until` shows in its output, then stops it with one SIGTERM. `via` runs node
 * under another command (stdbuf), `nodeArgs` go to node itself.
 */
function run(
  args: string[],
  until?: RegExp,
  {
    env = {},
    nodeArgs = [],
    via = [],
  }: { env?: Record<string, string>; nodeArgs?: string[]; via?: string[] } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const argv = [...via, process.execPath, ...nodeArgs, join(dist, 'src', 'bin', 'replug.js'), ...args];
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dist, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let signalled = false; // once: a second SIGTERM exits at once, without the clean stop
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      if (!signalled && until?.test(out)) signalled = child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** The chunks a chunk reaches through static `import ... from "./x.js"` (not `import("./x.js")`). */
function staticClosure(app: string, entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(join(app, file), 'utf8');
    for (const m of code.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?"\.\/([^"]+)";?$/gm))
      visit(m[1] as string);
  };
  visit(entry);
  return seen;
}

/** The source files a set of chunks holds (rolldown marks each with a `// <path>` line). */
function sourcesOf(app: string, chunks: Iterable<string>): string[] {
  const own = `${relative(REPO_ROOT, dist)}/`;
  const files: string[] = [];
  for (const c of chunks) {
    // Relative to where the bundler ran (the repository): ours as src/..., the rest as node_modules/...
    for (const m of readFileSync(join(app, c), 'utf8').matchAll(/^\/\/ (\S+\.c?js)$/gm)) {
      const p = m[1] as string;
      files.push(p.startsWith(own) ? p.slice(own.length) : p);
    }
  }
  return files;
}

beforeAll(async () => {
  await ensureBuilt();
  // A copy: the shared e2e build serves other suites, and the bundle replaces its bin entry.
  dist = mkdtempSync(join(REPO_ROOT, 'node_modules', '.cache', 'replug-bundle-'));
  cpSync(join(BUILD_DIR, 'src'), join(dist, 'src'), { recursive: true });
  const bundled = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle.mjs'), '--dist', dist], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
  expect(bundled, bundled.out).toMatchObject({ code: 0 });
}, 240_000);

afterAll(() => {
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('the bundled bin', () => {
  const agentArgs = (tree: FakeUsbTree, id: string) => [
    'agent',
    '--log-format',
    'json',
    '--id',
    id,
    '--broker-port',
    '0',
    '--state-dir',
    join(dist, `state-${id}`),
    '--sysfs-root',
    tree.sysfsRoot,
    '--devfs-root',
    tree.devfsRoot,
  ];

  /** A fake USB tree for one test, removed after it. */
  const withTree = async (fn: (tree: FakeUsbTree) => Promise<void>) => {
    const tree = await FakeUsbTree.create();
    try {
      await fn(tree);
    } finally {
      await tree.cleanup();
    }
  };

  it(
    'runs the agent with its embedded broker to started, and stops cleanly on SIGTERM',
    () =>
      withTree(async (tree) => {
        const res = await run(agentArgs(tree, 'bundle-test'), /agent bundle-test started/);
        expect(res.out).toMatch(/"msg":"agent bundle-test started/);
        expect(res.out).toMatch(/"msg":"stopped"/);
        expect(res.code).toBe(0);
        // DEBUG unset: MQTT.js's debuggers are the bundle's no-op (scripts/bundle.mjs), and print nothing.
        expect(res.out).not.toMatch(/mqttjs|mqtt-packet/);
      }),
    30_000,
  );

  it(
    "still prints MQTT.js's debug trace when DEBUG is set at start",
    () =>
      withTree(async (tree) => {
        const res = await run(agentArgs(tree, 'bundle-debug'), /agent bundle-debug started/, {
          env: { DEBUG: 'mqttjs:client,mqtt-packet:*' },
        });
        expect(res.out).toMatch(/mqttjs:client connect/);
        expect(res.out).toMatch(/mqtt-packet:writeToStream/);
        expect(res.code).toBe(0);
      }),
    30_000,
  );

  it(
    'starts without TurboFan: nothing is optimized before the agent logged started',
    () =>
      withTree(async (tree) => {
        // V8's trace goes through libc's stdout buffer: line-buffered (stdbuf), it lands in order with the
        // log, which writes to a pipe synchronously. --trace-opt is not a tier flag: the hold applies.
        const res = await run(agentArgs(tree, 'bundle-opt'), /agent bundle-opt started/, {
          nodeArgs: ['--trace-opt'],
          via: ['stdbuf', '-oL'],
        });
        expect(res.code).toBe(0);
        const startup = res.out.slice(0, res.out.search(/agent bundle-opt started/));
        expect(startup).toMatch(/"msg":"runtime: /); // the trace and the log share the output
        expect(startup.split('\n').filter((l) => /TURBOFAN/.test(l))).toEqual([]);
      }),
    30_000,
  );

  it('refuses to bundle its own entry again (tsc must run first)', async () => {
    const res = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle.mjs'), '--dist', dist], {
        stdio: 'ignore',
      });
      child.on('exit', resolve);
    });
    expect(res).toBe(1);
  });

  it('keeps the broker, the USB side, metrics, ajv and pino-pretty out of what every start evaluates', () => {
    const app = join(dist, 'app');
    // The entry sets V8's flags and imports the CLI (src/bin/run.ts) dynamically; the CLI's main.js
    // loads the chunk of `replug agent`: `(await import("./agent-<hash>.js")).agentCommand`.
    const entry = readFileSync(join(app, 'replug.js'), 'utf8');
    const runChunk = /await import\("\.\/([^"]+)"\)/.exec(entry)?.[1];
    expect(runChunk).toBeDefined();
    const cli = [...staticClosure(app, runChunk as string)];
    const agentChunk = cli
      .map((c) => /import\("\.\/([^"]+)"\)\)\.agentCommand/.exec(readFileSync(join(app, c), 'utf8'))?.[1])
      .find((c) => c !== undefined);
    expect(agentChunk).toBeDefined();
    // The entry itself loads nothing but node:v8, the flags, the idle collection (started once ready) and
    // the clock their timers run on: the flags must be set before the rest loads.
    expect(sourcesOf(app, staticClosure(app, 'replug.js')).sort()).toEqual([
      'src/bin/idle-gc.js',
      'src/bin/replug.js',
      'src/bin/v8-flags.js',
      'src/util/clock.js',
    ]);
    const eager = [...staticClosure(app, 'replug.js'), ...cli, ...staticClosure(app, agentChunk as string)];
    const sources = sourcesOf(app, eager);
    // What the path to `online` needs is there (a marker that the parsing above sees the chunks)...
    expect(sources).toContain('src/commands/agent.js');
    expect(sources).toContain('src/mqtt/publisher.js');
    expect(sources.some((s) => s.startsWith('node_modules/mqtt/build/lib/client.js'))).toBe(true);
    // ...and what it does not need is not.
    const lazy = sources.filter((s) =>
      /node_modules\/(aedes|aedes-persistence-level|classic-level|prom-client|pino-pretty|ajv|usb)\/|^src\/(usb\/watcher|agent\/after-online|broker\/broker)\.js$/.test(
        s,
      ),
    );
    expect(lazy).toEqual([]);
  });

  it('takes streams from node:stream, not readable-stream, and keeps every chunk one byte per character', () => {
    const app = join(dist, 'app');
    const chunks = readdirSync(app).filter((f) => f.endsWith('.js'));
    const sources = sourcesOf(app, chunks);
    expect(sources.some((s) => s.startsWith('node_modules/mqtt/build/lib/client.js'))).toBe(true);
    expect(sources.filter((s) => s.includes('node_modules/readable-stream/'))).toEqual([]);
    // V8 stores a source with one character above U+00FF two bytes per character (scripts/lib/one-byte.mjs).
    const wide = chunks.filter((c) => /[\u0100-\uffff]/.test(readFileSync(join(app, c), 'utf8')));
    expect(wide).toEqual([]);
  });
});
