/**
 * The request and response schemas (docs/schemas/request.schema.json, response.schema.json), for tests and
 * tools. The agent itself checks requests with parseRequest (contract.ts), which cuts a hostile payload
 * short before any schema walk; test/control holds the two to the same cases.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { findSchemaDir } from '../mqtt/schema.js';

export type ControlKind = 'request' | 'response';

let compiled: Map<ControlKind, ValidateFunction> | undefined;

function validators(): Map<ControlKind, ValidateFunction> {
  if (compiled) return compiled;
  const dir = findSchemaDir();
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.schema.json')))
    ajv.addSchema(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as object);
  const map = new Map<ControlKind, ValidateFunction>();
  for (const kind of ['request', 'response'] as const) {
    const v = ajv.getSchema(`https://replug.example/schemas/${kind}.schema.json`);
    if (!v) throw new Error(`replug: schema ${kind}.schema.json missing from ${dir}`);
    map.set(kind, v);
  }
  compiled = map;
  return map;
}

export function validateControl(
  kind: ControlKind,
  value: unknown,
): { ok: true } | { ok: false; errors: string[] } {
  const validate = validators().get(kind) as ValidateFunction;
  if (validate(value)) return { ok: true };
  return {
    ok: false,
    errors: (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`),
  };
}
