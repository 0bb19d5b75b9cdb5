/**
 * `replug doctor --tls-cert FILE` (issue 11): the broker's certificate checked the way the broker checks
 * it at start (broker/tls.ts certificateWarning), so an expired or nearly expired certificate is found
 * before clients start refusing the broker.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { certificateWarning } from '../broker/tls.js';
import { errnoOf } from '../errors.js';

export interface TlsCertCheck {
  file: string;
  ok: boolean;
  /** ISO time the certificate ends, when it could be read. */
  validTo?: string;
  /** What is wrong, in the broker's words; absent when ok. */
  problem?: string;
}

export async function checkTlsCert(file: string, now: Date = new Date()): Promise<TlsCertCheck> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    return { file, ok: false, problem: `cannot be read: ${errnoOf(err) ?? String(err)}` };
  }
  const problem = certificateWarning(pem, now);
  let validTo: string | undefined;
  try {
    validTo = new Date(new X509Certificate(pem).validTo).toISOString();
  } catch {
    // certificateWarning already says it cannot be parsed.
  }
  return {
    file,
    ok: problem === undefined,
    ...(validTo ? { validTo } : {}),
    ...(problem ? { problem } : {}),
  };
}

export function formatTlsCheck(check: TlsCertCheck): string {
  if (check.ok) return `broker TLS certificate ${check.file}: valid until ${check.validTo}`;
  return `broker TLS certificate ${check.file}: ${check.problem}`;
}
