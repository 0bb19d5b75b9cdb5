/** The session manager's view of a target, in the shape the `target/<key>/state` payload carries. */
import type { TargetSnapshot as PublishedTarget } from '../mqtt/payloads.js';
import type { TargetSnapshot as SessionTarget } from '../session/options.js';
import { parseTargetSpec } from '../usb/ids.js';

export function toTargetSnapshot(s: SessionTarget): PublishedTarget {
  const spec = parseTargetSpec(s.target);
  // s.target is built by targetKey() from a parsed spec, so it always parses back.
  const ids = typeof spec === 'string' ? { vid: '0000', pid: '0000' } : spec;
  const { stats } = s;
  return {
    target: s.target,
    vid: ids.vid,
    pid: ids.pid,
    ...(ids.serial ? { serial: ids.serial } : {}),
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
