/** The restartable session's public API: what the agent's composition root needs. */
export { type BackoffOptions, DEFAULT_BACKOFF, resolveBackoff } from './backoff.js';
export { matchesTarget } from './candidates.js';
export { type LoadDriverOptions, loadDriver } from './drivers/load.js';
export { createProbeDriver, type ProbeDriverOptions, type ProbeHandle } from './drivers/probe.js';
export type { DriverContext, SessionDriver } from './drivers/types.js';
export { toErrorInfo } from './error-info.js';
export {
  createSessionManager,
  type DeviceBus,
  type SessionManager,
  type SessionManagerOptions,
} from './manager.js';
export {
  DEFAULT_TIMEOUTS,
  type EmitFn,
  type SessionOptions,
  type SessionSnapshot,
  type SessionTimeouts,
} from './options.js';
export { Session } from './session.js';
export { percentile, type TargetStats } from './stats.js';
export { type TargetState, toTargetState } from './target-state.js';
