/**
 * Loads the broker's TLS files up front, so a wrong path, a malformed PEM or a key that does not match
 * the certificate is one BROKER_TLS line at start, not a handshake failure on the first client.
 */

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

export interface TlsFiles {
  /** Server certificate chain (PEM file path). */
  cert: string;
  /** Private key of that certificate (PEM file path). */
  key: string;
  /** CA bundle that signs client certificates (PEM file path); enables client-certificate checks. */
  ca?: string;
  /** With `ca`: refuse clients without a valid certificate (default true). */
  requireClientCert?: boolean;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ReplugError(ErrorCodes.BROKER_TLS, `cannot read TLS ${what} ${file}: ${errnoOf(err) ?? err}`, {
      hint: `check the --tls-${what} path and its permissions`,
      cause: err,
    });
  }
}

/** PEM contents, already proven usable. */
export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export async function loadTls(files: TlsFiles): Promise<LoadedTls> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.cert, 'cert'),
    readPem(files.key, 'key'),
    files.ca ? readPem(files.ca, 'ca') : Promise.resolve(undefined),
  ]);
  try {
    // Built only to validate: tls.createServer ignores a `secureContext` option (node docs, tls.Server),
    // so the server gets the PEM buffers themselves.
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
    return { cert, key, ...(ca ? { ca } : {}) };
  } catch (err) {
    // OpenSSL's own words (e.g. "key values mismatch", "no start line") say which file is wrong.
    const reason = err instanceof Error ? err.message : String(err);
    throw new ReplugError(ErrorCodes.BROKER_TLS, `TLS certificate or key unusable: ${reason}`, {
      hint: 'the key must match the certificate and both must be PEM (-----BEGIN ...)',
      cause: err,
    });
  }
}

/** A certificate this close to its end gets a warning, so it is renewed before clients start refusing. */
export const CERT_WARN_DAYS = 14;

/**
 * What is wrong with the first certificate of a PEM chain at `now`, in words for the start-up log and
 * `replug doctor --tls-cert` (issue 11: the broker started with an expired certificate without a word);
 * undefined when it is valid for more than CERT_WARN_DAYS. Clients refuse an expired certificate, so the
 * broker still starts (a lab may want exactly that) but says so.
 */
export function certificateWarning(pem: Buffer | string, now: Date = new Date()): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return `cannot be parsed: ${err instanceof Error ? err.message : String(err)}`;
  }
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) return `is not valid yet: valid from ${from.toISOString()} (is this host's clock right?)`;
  if (now > to) return `expired on ${to.toISOString()}: clients will refuse it (renew it)`;
  const days = Math.floor((to.getTime() - now.getTime()) / 86_400_000);
  if (days < CERT_WARN_DAYS) return `expires in ${days} day${days === 1 ? '' : 's'}, on ${to.toISOString()}`;
  return undefined;
}
