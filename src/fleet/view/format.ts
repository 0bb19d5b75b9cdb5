/** Readable relative times and durations for the views (issue 19: "readable relative times"). */

/** `now`, `12s ago`, `4m ago`, `3h ago`, `2d ago`; `in 3s` for a clock ahead of ours. */
export function ago(ms: number): string {
  if (ms < -1500) return `in ${span(-ms)}`;
  if (ms < 1000) return 'now';
  return `${span(ms)} ago`;
}

/** A coarse span: `12s`, `4m`, `3h`, `2d`. */
export function span(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** A measured duration: `340ms`, `1.2s`, `14s`, `2m05s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}
