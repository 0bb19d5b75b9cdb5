/**
 * Validates payloads against docs/schemas/*.schema.json (JSON Schema 2020-12, ajv). The schema files are the
 * documented contract, so they are read at runtime rather than copied into code: the same files serve
 * src/ under vitest, dist/src/ after `npm run build`, and the published package (package.json "files"
 * ships docs/).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv2020 as Ajv2020Class, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { FIRST_ERROR_OPTIONS, SCHEMA_IDS, STANDALONE_FILE } from './schema-standalone.js';

/**
 * ajv is required on the first validation, not imported: an idle agent validates nothing (only journal
 * lines at start, when there are any), and ajv is ~8 MB of RSS it would carry for nothing (issue 17).
 * ajv is CommonJS, so a synchronous require keeps validatePayload synchronous.
 */
const requireAjv = (): typeof Ajv2020Class =>
  (createRequire(import.meta.url)('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020Class }).Ajv2020;

export type PayloadKind = 'status' | 'info' | 'devices' | 'event' | 'target' | 'health';

export const PAYLOAD_KINDS: readonly PayloadKind[] = [
  'status',
  'info',
  'devices',
  'event',
  'target',
  'health',
];

const FILE_OF: Record<PayloadKind, string> = SCHEMA_IDS;

export type ValidationResult = { ok: true } | { ok: false; errors: string[] };

/**
 * docs/schemas is two levels above src/mqtt and three above dist/src/mqtt: walk up from this module
 * until it appears rather than hard-coding either layout.
 */
export function findSchemaDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'docs', 'schemas');
    if (existsSync(path.join(candidate, 'common.schema.json'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`replug: docs/schemas not found above ${from}; the package is incomplete`);
}

interface Validators {
  ajv: Ajv2020Class;
  dir: string;
  byKind: Map<PayloadKind, ValidateFunction>;
}

const compiled = new Map<boolean, Validators>();

/**
 * allErrors: report every problem at once (what tests and tools want). Without it ajv stops at the first
 * failing keyword: `replug watch` checks strangers' payloads with that, because collecting every error of
 * a hostile 17 KB payload cost it half a millisecond, and a burst of them starved real agents (issue 12).
 * Each kind is compiled on its first use (issue 17): compiling all six took watch ~1 s before the first
 * census message, and the agent only ever checks events (its journal at start).
 */
function validator(allErrors: boolean, kind: PayloadKind): ValidateFunction {
  if (!allErrors) {
    const pre = precompiled();
    if (pre) return pre[kind];
  }
  let v = compiled.get(allErrors);
  if (!v) {
    const dir = findSchemaDir();
    // strict: unknown keywords in our own schemas are bugs.
    const Ajv2020 = requireAjv();
    // The same options the build's standalone validators were generated with (schema-standalone.ts).
    const ajv = new Ajv2020({ ...FIRST_ERROR_OPTIONS, allErrors });
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.schema.json'))) {
      ajv.addSchema(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as object);
    }
    v = { ajv, dir, byKind: new Map() };
    compiled.set(allErrors, v);
  }
  const known = v.byKind.get(kind);
  if (known) return known;
  const validate = v.ajv.getSchema(`https://replug.example/schemas/${FILE_OF[kind]}`);
  if (!validate) throw new Error(`replug: schema ${FILE_OF[kind]} missing from ${v.dir}`);
  v.byKind.set(kind, validate);
  return validate;
}

let standalone: Record<PayloadKind, ValidateFunction> | null | undefined;

/**
 * The first-error validators `npm run build` generated from docs/schemas (schema-standalone.ts), when this
 * build has them: loading them costs ~30 ms where compiling costs ~1 s. null when absent (vitest runs src/).
 */
function precompiled(): Record<PayloadKind, ValidateFunction> | null {
  if (standalone !== undefined) return standalone;
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), STANDALONE_FILE);
  standalone = existsSync(file)
    ? (createRequire(import.meta.url)(file) as Record<PayloadKind, ValidateFunction>)
    : null;
  return standalone;
}

export function validatePayload(
  kind: PayloadKind,
  value: unknown,
  options: { firstError?: boolean } = {},
): ValidationResult {
  if (!(kind in FILE_OF)) return { ok: false, errors: [`unknown payload kind ${kind}`] };
  const validate = validator(!options.firstError, kind);
  if (validate(value)) return { ok: true };
  return { ok: false, errors: (validate.errors ?? []).map(describe) };
}

function describe(e: ErrorObject): string {
  const where = e.instancePath || '/';
  const extra =
    e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties'
      ? ` (${JSON.stringify(e.params)})`
      : '';
  return `${where} ${e.message ?? e.keyword}${extra}`;
}
