/**
 * Keeps the log readable when something repeats or shouts (issue 12, "Log floods"): a driver whose probe
 * fails at once cycles up -> terminating -> backoff -> starting several times a second (498 lines in 25 s
 * measured), and a driver that throws a 1 MB message had it written whole on every attempt (8.4 MB in 50 s).
 *
 * Two rules, applied to every logger made by src/log.ts (and its children):
 * - Repeats: lines are grouped by level and message template (the message with standalone decimal numbers
 *   replaced by `#`, so "attempt 17 failed" and "attempt 18 failed" are one template, while `1209:0001`,
 *   port paths and addresses written as `1-1.4` keep lines of different devices apart). The first
 *   `burst` lines of a template in a window pass; the rest are counted and summarised once when the window
 *   ends: "same error ×N in the last minute: <the last one>". A template that flooded gets only its first
 *   line and a summary in the windows that follow, until a window passes without a repeat.
 * - Length: a message longer than `maxChars` is cut, saying how much was cut; so are long strings in the
 *   logged fields (error messages and stacks included).
 * Levels below info (debug, trace) are never summarised, and a logger at level debug or trace summarises
 * nothing: asking for them means asking for every line (and the e2e suites count every line).
 */
import type { Clock, TimerHandle } from './util/clock.js';

export interface FloodOptions {
  /** Window length; 60 s by default (the summary says "in the last minute"). */
  windowMs?: number;
  /** Lines of one template passed verbatim per window before the rest are counted; 10 by default. */
  burst?: number;
  /** Longest message or field string written whole; 2,000 characters by default. */
  maxChars?: number;
  /** At most this many templates tracked; past it the oldest window is closed early. 500 by default. */
  maxTemplates?: number;
  /** false: never summarise (lines are still cut). true by default. */
  repeats?: boolean;
}

interface Window {
  level: number;
  startedAt: number;
  passed: number;
  suppressed: number;
  /** Allowed in this window: the full burst, or 1 when the previous window of this template flooded. */
  allowance: number;
  lastMessage: string;
  timer: TimerHandle | undefined;
}

export type Emit = (level: number, fields: Record<string, unknown>, msg: string) => void;

const INFO = 30;
// A standalone decimal number: not part of a hex ID (`1209:0001`), a port path (`1-1.4`) or a word.
const NUMBER = /(^|[\s(=[,])\d+(?:\.\d+)?(?=$|[\s),;\]%]|ms\b|s\b)/g;

export function template(msg: string): string {
  return msg.replace(NUMBER, '$1#');
}

/** `text` cut to `max` characters, saying how many were left out. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length - max} more characters cut)`;
}

/** A copy of `value` with every string longer than `max` cut; plain data only, depth-bounded. */
export function cutDeep(value: unknown, max: number, depth = 4): unknown {
  if (typeof value === 'string') return cutText(value, max);
  if (value === null || typeof value !== 'object' || depth === 0) return value;
  if (value instanceof Error) return value; // the err serializer cuts it after serialising
  if (Array.isArray(value)) {
    return needsCut(value, max, depth) ? value.map((v) => cutDeep(v, max, depth - 1)) : value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // class instances: leave as pino would
  if (!needsCut(value, max, depth)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = cutDeep(v, max, depth - 1);
  return out;
}

function needsCut(value: unknown, max: number, depth: number): boolean {
  if (typeof value === 'string') return value.length > max;
  if (value === null || typeof value !== 'object' || depth === 0 || value instanceof Error) return false;
  const items = Array.isArray(value) ? value : Object.values(value);
  return items.some((v) => needsCut(v, max, depth - 1));
}

/**
 * The repeat counter behind the logger. `admit` says whether a line is written; summaries go out through
 * `emit` when a window closes (on the injected clock; its timers are unref'd so they never hold the
 * process open), or at once with `flush()` when the process stops.
 */
export class FloodGuard {
  private readonly windowMs: number;
  private readonly burst: number;
  private readonly maxTemplates: number;
  private readonly repeats: boolean;
  readonly maxChars: number;
  private readonly windows = new Map<string, Window>();
  /** Templates whose last window flooded: their next window allows one line. */
  private readonly flooding = new Set<string>();

  constructor(
    private readonly clock: Pick<Clock, 'monotonic' | 'setTimeout' | 'clearTimeout'>,
    private readonly emit: Emit,
    options: FloodOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.burst = options.burst ?? 10;
    this.maxChars = options.maxChars ?? 2000;
    this.maxTemplates = options.maxTemplates ?? 500;
    this.repeats = options.repeats ?? true;
  }

  /** True when the line should be written now. */
  admit(level: number, msg: string): boolean {
    if (level < INFO || !this.repeats) return true;
    const key = `${level} ${template(msg)}`;
    let w = this.windows.get(key);
    if (!w) {
      if (this.windows.size >= this.maxTemplates) this.close(this.windows.keys().next().value as string);
      w = {
        level,
        startedAt: this.clock.monotonic(),
        passed: 0,
        suppressed: 0,
        allowance: this.flooding.has(key) ? 1 : this.burst,
        lastMessage: msg,
        timer: undefined,
      };
      this.windows.set(key, w);
      const timer = this.clock.setTimeout(() => this.close(key), this.windowMs);
      (timer as { unref?: () => void }).unref?.();
      w.timer = timer;
    }
    if (w.passed < w.allowance) {
      w.passed++;
      return true;
    }
    w.suppressed++;
    w.lastMessage = msg;
    return false;
  }

  /** Closes every window now, writing the pending summaries (on stop, so none is lost). */
  flush(): void {
    for (const key of [...this.windows.keys()]) this.close(key);
    this.flooding.clear();
  }

  private close(key: string): void {
    const w = this.windows.get(key);
    if (!w) return;
    this.windows.delete(key);
    if (w.timer !== undefined) this.clock.clearTimeout(w.timer);
    if (w.suppressed === 0) {
      this.flooding.delete(key);
      return;
    }
    this.flooding.add(key);
    if (this.flooding.size > this.maxTemplates)
      this.flooding.delete(this.flooding.values().next().value as string);
    const seconds = Math.max(1, Math.round((this.clock.monotonic() - w.startedAt) / 1000));
    const span = seconds >= 55 && seconds <= 65 ? 'the last minute' : `the last ${seconds} s`;
    const what = w.level >= 50 ? 'error' : w.level >= 40 ? 'warning' : 'line';
    this.emit(
      w.level,
      { repeated: w.suppressed, windowS: seconds },
      `same ${what} ×${w.suppressed} in ${span}: ${w.lastMessage}`,
    );
  }
}
