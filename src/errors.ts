/**
 * Errors with stable codes (the undici habit): code is for machines and docs, message is the one line a
 * user reads, hint says what to do. Boundaries (src/bin, the agent's supervisors) translate anything else
 * into one of these before it reaches a user.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'REPLUG_CONFIG_INVALID',
  USAGE: 'REPLUG_USAGE',
  NO_USB_BUS: 'REPLUG_NO_USB_BUS',
  USB_ACCESS: 'REPLUG_USB_ACCESS',
  USB_BUSY: 'REPLUG_USB_BUSY',
  USB_IO: 'REPLUG_USB_IO',
  USB_GONE: 'REPLUG_USB_GONE',
  USB_TIMEOUT: 'REPLUG_USB_TIMEOUT',
  USB_IDENTITY_MISMATCH: 'REPLUG_USB_IDENTITY_MISMATCH',
  DRIVER_LOAD: 'REPLUG_DRIVER_LOAD',
  DRIVER_FAILED: 'REPLUG_DRIVER_FAILED',
  SOURCE_UNAVAILABLE: 'REPLUG_SOURCE_UNAVAILABLE',
  MQTT_URL: 'REPLUG_MQTT_URL',
  MQTT_CONNECT: 'REPLUG_MQTT_CONNECT',
  MQTT_AUTH: 'REPLUG_MQTT_AUTH',
  BROKER_PORT_IN_USE: 'REPLUG_BROKER_PORT_IN_USE',
  BROKER_AUTH_REQUIRED: 'REPLUG_BROKER_AUTH_REQUIRED',
  BROKER_TLS: 'REPLUG_BROKER_TLS',
  STATE_DIR: 'REPLUG_STATE_DIR',
  RELAY_PERMISSION: 'REPLUG_RELAY_PERMISSION',
  RELAY_UDEV_PRESENT: 'REPLUG_RELAY_UDEV_PRESENT',
  INTERNAL: 'REPLUG_INTERNAL',
  /** The broker refused a publish or a connection for a reason other than credentials (MQTT 5 reason code). */
  MQTT_REFUSED: 'REPLUG_MQTT_REFUSED',
  // The recovery ladder and actions (issue 15; docs/heal.md).
  /** A heal step was not run: the per-target rate limit, or a climb already under way. */
  HEAL_RATE_LIMITED: 'REPLUG_HEAL_RATE_LIMITED',
  HEAL_BUSY: 'REPLUG_HEAL_BUSY',
  /** A heal step would touch more than the target (a hub port shared with a non-target device). */
  HEAL_REFUSED: 'REPLUG_HEAL_REFUSED',
  /** A heal step needs a write this process may not do (root, a writable /sys, CAP_SYS_ADMIN). */
  HEAL_PERMISSION: 'REPLUG_HEAL_PERMISSION',
  /** This kernel or hub has no such control (no `disable` attribute, no driver bound). */
  HEAL_UNSUPPORTED: 'REPLUG_HEAL_UNSUPPORTED',
  HEAL_NOT_PRESENT: 'REPLUG_HEAL_NOT_PRESENT',
  HEAL_FAILED: 'REPLUG_HEAL_FAILED',
  ACTION_FAILED: 'REPLUG_ACTION_FAILED',
  ACTION_TIMEOUT: 'REPLUG_ACTION_TIMEOUT',
  DOCKER_UNAVAILABLE: 'REPLUG_DOCKER_UNAVAILABLE',
  DOCKER_FAILED: 'REPLUG_DOCKER_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface ReplugErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra structured facts for logs (never shown as a stack). */
  details?: Record<string, unknown>;
}

export class ReplugError extends Error {
  override readonly name = 'ReplugError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ReplugErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

/** Several configuration problems reported at once (habit 6: parse everything, then report). */
export class ConfigError extends ReplugError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(ErrorCodes.CONFIG_INVALID, problems.join('; '), {
      hint: 'run with --help to see every flag and variable',
    });
    this.problems = problems;
  }
}

export function isReplugError(err: unknown): err is ReplugError {
  return err instanceof ReplugError;
}

/** Node errno (ENOENT, EACCES, ...) of an unknown error, if it has one. */
export function errnoOf(err: unknown): string | undefined {
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'string'
  ) {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** One line for a user: `message (hint)` — no stack; the stack is for --debug only. */
export function formatForUser(err: unknown): string {
  if (err instanceof ConfigError) {
    return (
      err.problems.map((p) => `replug: ${p}`).join('\n') + (err.hint ? `\nreplug: hint: ${err.hint}` : '')
    );
  }
  if (err instanceof ReplugError) {
    return `replug: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `replug: unexpected error: ${message} (run with --debug for details)`;
}
