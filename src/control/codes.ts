/**
 * Stable codes of request refusals and failures (`error.code` in a response). Scripts and dashboards branch
 * on them, so they never change meaning; new ones are added here and in docs/topics.md together.
 */
export const RequestCodes = {
  /** The payload is not JSON, not an object, or a field has the wrong type or an unknown name. */
  INVALID: 'REPLUG_REQUEST_INVALID',
  /** The payload is larger than MAX_REQUEST_BYTES. */
  TOO_LARGE: 'REPLUG_REQUEST_TOO_LARGE',
  /** `ts` is older (or further in the future) than the agent's --commands-max-age. */
  STALE: 'REPLUG_REQUEST_STALE',
  /** Delivered as a retained message: it would fire again on every (re)subscribe. */
  RETAINED: 'REPLUG_REQUEST_RETAINED',
  /** No such action (Tasmota's "Unknown"). */
  UNKNOWN_ACTION: 'REPLUG_UNKNOWN_ACTION',
  /** The action needs `target` (or `target` or `device`) and the request has none. */
  TARGET_REQUIRED: 'REPLUG_TARGET_REQUIRED',
  /** `target` names no target of this agent. */
  TARGET_UNKNOWN: 'REPLUG_TARGET_UNKNOWN',
  /** restart: the target has no device present, so there is no session to close and reopen. */
  TARGET_ABSENT: 'REPLUG_TARGET_ABSENT',
  /** forget: the target is configured here; its state would come back at its next change. */
  TARGET_CONFIGURED: 'REPLUG_TARGET_CONFIGURED',
  /** forget: the device is present; its facts would come back in the next device list. */
  DEVICE_PRESENT: 'REPLUG_DEVICE_PRESENT',
  /** reset: this agent runs no recovery ladder. */
  HEAL_UNAVAILABLE: 'REPLUG_HEAL_UNAVAILABLE',
  /** reset: the ladder refused to start (step not turned on, device absent, a climb under way, rate limit). */
  RESET_REFUSED: 'REPLUG_RESET_REFUSED',
  /** reset: the ladder (or the step) ran and did not bring the target back. */
  RESET_FAILED: 'REPLUG_RESET_FAILED',
  /** Too many requests are being acted on at once (a flood): asked again later, it may work. */
  BUSY: 'REPLUG_REQUEST_BUSY',
  /** The action threw: the message says what failed. */
  ACTION_FAILED: 'REPLUG_ACTION_FAILED',
} as const;

export type RequestCode = (typeof RequestCodes)[keyof typeof RequestCodes];

/** A refusal or failure an action handler returns (never throws past the responder). */
export class ActionError extends Error {
  constructor(
    readonly code: RequestCode,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}
