/**
 * Hints are worded at the boundary (habit 5): a lower layer says what went wrong, the command that ran it
 * says which of *its* flags helps. `rehint` gives a ReplugError of one code a command's own hint.
 */
import { type ErrorCode, isReplugError, ReplugError } from '../errors.js';

export function rehint(err: unknown, code: ErrorCode, hint: (err: ReplugError) => string): unknown {
  if (!isReplugError(err) || err.code !== code) return err;
  return new ReplugError(err.code, err.message, {
    hint: hint(err),
    cause: err,
    ...(err.details ? { details: err.details } : {}),
  });
}
