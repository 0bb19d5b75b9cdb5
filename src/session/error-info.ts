/**
 * Driver errors become {code, message} for events and stats. A user's driver module may throw errors that
 * carry a `REPLUG_*` code without importing our ReplugError class (its copy of replug may differ, or it
 * may not import replug at all), so the code is read by shape, not by instanceof.
 */
import { type ErrorCode, ErrorCodes } from '../errors.js';
import type { ErrorInfo } from './events.js';

const KNOWN = new Set<string>(Object.values(ErrorCodes));

export function errorCodeOf(err: unknown): ErrorCode | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && KNOWN.has(code)) return code as ErrorCode;
  }
  return undefined;
}

export function toErrorInfo(err: unknown): ErrorInfo {
  const message = err instanceof Error ? err.message : String(err);
  return { code: errorCodeOf(err) ?? ErrorCodes.DRIVER_FAILED, message };
}
