/**
 * Run by `npm run build` after tsc (`node dist/src/mqtt/schema-build.js`): docs/schemas -> the precompiled
 * first-error validators next to this file (schema-standalone.ts). It lives in src/ so that every build
 * context that can run tsc can run it. Without docs/schemas (a context holding src/ only) it says so and
 * skips: that build compiles the schemas at run time, as before.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeStandalone } from './schema-standalone.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const schemas = path.resolve(here, '..', '..', '..', 'docs', 'schemas');
if (existsSync(path.join(schemas, 'common.schema.json'))) writeStandalone(schemas, here);
else console.error(`schema-build: ${schemas} not found; skipped (the schemas compile at run time)`);
