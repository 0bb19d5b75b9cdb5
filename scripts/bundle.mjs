#!/usr/bin/env node
/**
 * The published bin as a code-split bundle (issue 17, start-up). Run by `npm run build` after tsc and
 * schema-build (`node scripts/bundle.mjs [--dist DIR]`, dist/ by default). It reads tsc's output
 * (dist/src), so tests and every module under dist/src stay as they were, and only `replug` (package.json
 * "bin", the image's entry point, the systemd unit) runs the bundle.
 *
 * Why: `replug agent` loaded ~90 of replug's own ES modules and ~230 CommonJS files one by one before it
 * published `online`: resolving, stat-ing, reading and wrapping each cost more CPU than running them. The
 * bundle is cut where the source already loads lazily (every `await import()`: the commands, the embedded
 * broker, the after-online part of the agent, pino-pretty, ...), so what an agent never uses is still
 * never loaded, and the idle footprint does not grow (a one-file bundle evaluated everything at start:
 * +11 MB RSS). Rolldown because it keeps those dynamic imports as chunks and runs on Node >= 20.19.
 *
 * Layout: dist/app/ holds the entry and its chunks, two levels below the package root as dist/src/<dir>/
 * modules are, so the lookups relative to a module (package.json for the version, docs/schemas, web/)
 * find the same files. dist/src/bin/replug.js becomes a one-line entry that imports dist/app/replug.js.
 *
 * Left outside the bundle, required from node_modules at run time: native addons (their loaders find
 * the .node file relative to their own directory: usb, netlink, and classic-level's binding.js, the rest
 * of classic-level is bundled), and what replug itself loads with createRequire (ajv, the full mqtt entry
 * for non-TCP transports, the generated validators, copied beside the chunks).
 *
 * `worker-timers` is replaced by a module that throws if used: MQTT.js requires it for browsers'
 * `timerVariant: 'worker'`, which replug never sets (Node uses setInterval), and loading it cost ~7 ms.
 *
 * `debug` (MQTT.js's and mqtt-packet's tracing) is the real package only when DEBUG is set at start;
 * otherwise every debugger is one shared no-op. Disabled, the real one still gathers each call's
 * arguments into a rest array and reads an `enabled` getter before returning: mqtt-packet calls it per
 * property it writes, and that was 7.5 % of everything a replug storm allocated (bench/footprint.mjs).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import { toOneByteSource } from './lib/one-byte.mjs';

// `--dist DIR`: another tsc output directory (the bundle test bundles a private build).
const at = process.argv.indexOf('--dist');
const DIST =
  at > 0 && process.argv[at + 1]
    ? path.resolve(process.argv[at + 1])
    : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const ENTRY = path.join(DIST, 'src', 'bin', 'replug.js');
const OUT = path.join(DIST, 'app');
const VALIDATORS = 'schema-validators.generated.cjs';
const MARK = '// replug bundle entry (scripts/bundle.mjs)';

const NATIVE = ['usb', 'netlink'];
const WORKER_TIMERS_STUB = '\0replug:worker-timers';
const DEBUG_SHIM = '\0replug:debug';

// CommonJS, as the package is: with DEBUG set, the real one (bundled, evaluated only then).
const DEBUG_SHIM_SOURCE = `'use strict';
if (process.env.DEBUG) module.exports = require('debug/src/node.js');
else {
  const off = function off() {};
  off.enabled = false;
  off.namespace = '';
  off.extend = () => off;
  off.log = off;
  off.destroy = () => false;
  const createDebug = () => off;
  Object.assign(createDebug, {
    debug: createDebug, default: createDebug, enable() {}, disable: () => '', enabled: () => false,
    coerce: (v) => v, formatters: {}, names: [], skips: [], humanize: (ms) => String(ms),
  });
  module.exports = createDebug;
}
`;

const source = readFileSync(ENTRY, 'utf8');
if (source.includes(MARK)) {
  console.error(`bundle: ${ENTRY} is the bundle's own entry; run tsc first (npm run build)`);
  process.exit(1);
}

rmSync(OUT, { recursive: true, force: true });
await build({
  input: { replug: ENTRY },
  platform: 'node',
  external: (id) =>
    id.startsWith('node:') ||
    NATIVE.some((n) => id === n || id.startsWith(`${n}/`)) ||
    id === 'classic-level/binding.js',
  plugins: [
    {
      name: 'replug-runtime-requires',
      resolveId(id, importer) {
        if (id === 'worker-timers') return WORKER_TIMERS_STUB;
        if (id === 'debug') return DEBUG_SHIM;
        // MQTT.js and bl take their streams from readable-stream, a 156 KB copy of Node's own stream
        // module for browsers, evaluated at every start (2 MB of an idle agent's heap). On Node the
        // built-in is the same API, already loaded.
        if (id === 'readable-stream') return { id: 'node:stream', external: true };
        // classic-level/binding.js is `require('node-gyp-build')(__dirname)`: it must run from its package.
        if (
          id === './binding' &&
          importer &&
          /[\\/]node_modules[\\/]classic-level[\\/][^\\/]+$/.test(importer)
        )
          return { id: 'classic-level/binding.js', external: true };
        return null;
      },
      load(id) {
        if (id === DEBUG_SHIM) return DEBUG_SHIM_SOURCE;
        if (id !== WORKER_TIMERS_STUB) return null;
        return `const no = () => { throw new Error('worker-timers is not bundled: replug uses Node timers'); };
export const setInterval = no, clearInterval = no, setTimeout = no, clearTimeout = no;`;
      },
      // Latin-1 source is kept one byte per character by V8 (scripts/lib/one-byte.mjs). Here, after the
      // chunks are final: rolldown prints string literals again after renderChunk, undoing the escapes.
      generateBundle(_options, bundle) {
        for (const chunk of Object.values(bundle))
          if (chunk.type === 'chunk') chunk.code = toOneByteSource(chunk.code);
      },
    },
  ],
  output: {
    dir: OUT,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
  },
  logLevel: 'warn',
});

const validators = path.join(DIST, 'src', 'mqtt', VALIDATORS);
if (existsSync(validators)) copyFileSync(validators, path.join(OUT, VALIDATORS));
mkdirSync(path.dirname(ENTRY), { recursive: true });
writeFileSync(ENTRY, `#!/usr/bin/env node\n${MARK}\nimport '../../app/replug.js';\n`, { mode: 0o755 });
