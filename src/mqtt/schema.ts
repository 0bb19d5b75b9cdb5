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

const FILE_OF: Record<PayloadKind, string> = {
  status: 'status.schema.json',
  info: 'info.schema.json',
  devices: 'devices.schema.json',
  event: 'event.schema.json',
  target: 'target-state.schema.json',
  health: 'health.schema.json',
};

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

const compiled = new Map<boolean, Map<PayloadKind, ValidateFunction>>();

/**
 * allErrors: report every problem at once (what tests and tools want). Without it ajv stops at the first
 * failing keyword: `replug watch` checks strangers' payloads with that, because collecting every error of
 * a hostile 17 KB payload cost it half a millisecond, and a burst of them starved real agents (issue 12).
 */
function validators(allErrors: boolean): Map<PayloadKind, ValidateFunction> {
  const cached = compiled.get(allErrors);
  if (cached) return cached;
  const dir = findSchemaDir();
  // strict: unknown keywords in our own schemas are bugs.
  const Ajv2020 = requireAjv();
  const ajv = new Ajv2020({ allErrors, strict: true, allowUnionTypes: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.schema.json'))) {
    ajv.addSchema(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as object);
  }
  const map = new Map<PayloadKind, ValidateFunction>();
  for (const kind of PAYLOAD_KINDS) {
    const id = `https://replug.example/schemas/${FILE_OF[kind]}`;
    const validate = ajv.getSchema(id);
    if (!validate) throw new Error(`replug: schema ${FILE_OF[kind]} missing from ${dir}`);
    map.set(kind, validate);
  }
  compiled.set(allErrors, map);
  return map;
}

export function validatePayload(
  kind: PayloadKind,
  value: unknown,
  options: { firstError?: boolean } = {},
): ValidationResult {
  const validate = validators(!options.firstError).get(kind);
  if (!validate) return { ok: false, errors: [`unknown payload kind ${kind}`] };
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
