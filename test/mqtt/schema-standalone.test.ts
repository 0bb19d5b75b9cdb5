/**
 * The build's precompiled validators (src/mqtt/schema-standalone.ts) must judge every payload exactly as
 * the validators compiled at run time do: same verdict, same first error. Generated here from docs/schemas
 * into a temporary directory, as `npm run build` does into dist/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildDevices,
  buildEvent,
  buildHealth,
  buildInfo,
  buildStatus,
  buildTargetState,
} from '../../src/mqtt/payloads.js';
import { findSchemaDir, type PayloadKind, validatePayload } from '../../src/mqtt/schema.js';
import { writeStandalone } from '../../src/mqtt/schema-standalone.js';
import { device, health, info, snapshot } from './fixtures.js';

// Inside the repository, so that the generated code's require('ajv/dist/runtime/...') resolves as in dist/.
const dir = mkdtempSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '.standalone-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = 1_767_225_600_000;
const valid: [PayloadKind, object][] = [
  ['status', buildStatus('online', 3, T)],
  ['info', buildInfo(info, 3, T)],
  ['devices', buildDevices([device], 3, T)],
  ['target', buildTargetState(snapshot, 3, T)],
  [
    'health',
    buildHealth(health, { depth: 0, dropped: 0, capacity: 10 }, { connected: true, reconnects: 0 }, 3, T),
  ],
  [
    'event',
    buildEvent(
      { type: 'reconnect.succeeded', ts: T, target: '1209:0001', attempts: 1, device, durationMs: 9 },
      1,
      3,
    ),
  ],
];

/** Each valid payload, then broken ways: a field dropped, a wrong type, an extra field, not an object. */
function cases(): [PayloadKind, unknown][] {
  const out: [PayloadKind, unknown][] = [];
  for (const [kind, p] of valid) {
    out.push([kind, p]);
    for (const key of Object.keys(p)) {
      const { [key]: _, ...rest } = p as Record<string, unknown>;
      out.push([kind, rest]);
      out.push([kind, { ...p, [key]: { nested: [1, 'x'] } }]);
    }
    out.push([kind, { ...p, unexpected: 'x'.repeat(300) }]);
    out.push([kind, [p]]);
    out.push([kind, 'text']);
  }
  return out;
}

describe('precompiled first-error validators', () => {
  it('give the verdict and first error of the run-time compiled ones on every case', () => {
    const file = writeStandalone(findSchemaDir(), dir);
    const pre = createRequire(import.meta.url)(file) as Record<PayloadKind, ValidateFunction>;
    let rejected = 0;
    const all = cases();
    for (const [kind, payload] of all) {
      const runtime = validatePayload(kind, payload, { firstError: true });
      const ok = pre[kind](payload);
      expect(ok, `${kind} ${JSON.stringify(payload).slice(0, 80)}`).toBe(runtime.ok);
      if (!runtime.ok) {
        rejected++;
        const first = pre[kind].errors?.[0];
        expect(runtime.errors[0]).toContain(first?.instancePath || '/');
        expect(runtime.errors[0]).toContain(first?.message ?? '');
      }
    }
    // Both sides of the comparison were exercised.
    expect(rejected).toBeGreaterThan(all.length / 2);
    expect(all.length - rejected).toBeGreaterThanOrEqual(valid.length);
  });
});
