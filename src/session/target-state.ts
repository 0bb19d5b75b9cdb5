/**
 * One target's state in the shape `target/<key>/state` carries (docs/schemas/target-state), built from the
 * session's snapshot and the target spec the manager parsed once: nothing downstream parses a key string
 * back (issue 13).
 */
import type { HealCounts } from '../heal/counts.js';
import { type TargetSpec, targetKey } from '../usb/ids.js';
import type { UsbDevice } from '../usb/types.js';
import type { ErrorInfo, SessionStateName } from './events.js';
import type { TargetStats } from './stats.js';

export interface ReconnectStats {
  count: number;
  ok: number;
  failed: number;
  /** null until a reconnect succeeded. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface TargetState {
  /** `vvvv:pppp` or `vvvv:pppp:SERIAL` (src/usb/ids.ts targetKey). */
  target: string;
  vid: string;
  pid: string;
  serial?: string;
  state: SessionStateName;
  /** ms epoch when the session entered `state`. */
  since: number;
  attempts: number;
  lastOutcome?: 'succeeded' | 'failed';
  lastError?: ErrorInfo;
  reconnects: ReconnectStats;
  /** Recovery ladder counts, added by the heal feature when --heal is on (issue 15). */
  heal?: HealCounts;
  device?: UsbDevice;
}

/** Not published as an event: the manager's view of one target after it changed (its retained state). */
export interface TargetEvents {
  'target.changed': [TargetState];
}

/** `s` is a session's snapshot (options.ts SessionSnapshot). */
export function toTargetState(
  spec: TargetSpec,
  s: { state: SessionStateName; since: number; device?: UsbDevice; stats: TargetStats },
): TargetState {
  const { stats } = s;
  return {
    target: targetKey(spec),
    vid: spec.vid,
    pid: spec.pid,
    ...(spec.serial ? { serial: spec.serial } : {}),
    state: s.state,
    since: s.since,
    attempts: stats.attempts,
    ...(stats.lastOutcome ? { lastOutcome: stats.lastOutcome === 'ok' ? 'succeeded' : 'failed' } : {}),
    ...(stats.lastError ? { lastError: stats.lastError } : {}),
    // count = finished attempts to bring the session up (the first one included), so ok/count is the
    // success rate `replug watch` shows; stats.reconnects (ups after the first) is ok - 1.
    reconnects: {
      count: stats.ok + stats.failed,
      ok: stats.ok,
      failed: stats.failed,
      p50Ms: stats.p50Ms ?? null,
      p95Ms: stats.p95Ms ?? null,
    },
    ...(s.device ? { device: s.device } : {}),
  };
}
