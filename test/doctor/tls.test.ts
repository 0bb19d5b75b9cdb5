/** `replug doctor --tls-cert` (issue 11): an expired broker certificate is named before clients refuse it. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
// The bench's certificate maker (plain JS, untyped): `openssl ca` with explicit 2020 dates (req -days cannot go back).
// @ts-expect-error bench/abuse.mjs has no declaration file
import { expiredCert } from '../../bench/abuse.mjs';
import { checkTlsCert, formatTlsCheck } from '../../src/doctor/tls.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'replug-doctor-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('says an expired certificate has expired, and when', async () => {
  const { cert } = expiredCert(dir) as { cert: string };
  const check = await checkTlsCert(cert);
  expect(check).toMatchObject({ ok: false, validTo: '2021-01-01T00:00:00.000Z' });
  expect(formatTlsCheck(check)).toBe(
    `broker TLS certificate ${cert}: expired on 2021-01-01T00:00:00.000Z: clients will refuse it (renew it)`,
  );
  expect((await checkTlsCert(cert, new Date('2020-06-01'))).ok).toBe(true);
  expect((await checkTlsCert(path.join(dir, 'missing.pem'))).problem).toBe('cannot be read: ENOENT');
});
