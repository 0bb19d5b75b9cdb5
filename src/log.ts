/**
 * pino with an injected destination (the pino habit): tests read log lines back as JSON. On a TTY the
 * agent prints readable lines through pino-pretty; otherwise JSON lines.
 *
 * Every logger made here (and every child of it) summarises repeated lines and cuts long messages and
 * fields (src/log-flood.ts, issue 12 "Log floods"); flushRepeats(log) writes the pending summaries.
 */
import {
  type DestinationStream,
  type LevelWithSilent,
  type Logger as PinoLogger,
  type LoggerOptions as PinoOptions,
  pino,
} from 'pino';
import { cutDeep, cutText, FloodGuard, type FloodOptions } from './log-flood.js';
import { type Clock, systemClock } from './util/clock.js';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream | NodeJS.WritableStream;
  /** Human-readable lines (pino-pretty) instead of JSON. */
  pretty?: boolean;
  /** Fields on every line, e.g. { agent: 'pi-kitchen' }. */
  base?: Record<string, unknown>;
  /** Repeat summaries and length cuts; `false` turns them off. */
  flood?: FloodOptions | false;
  /** For the repeat windows (tests pass a fake one). */
  clock?: Pick<Clock, 'monotonic' | 'setTimeout' | 'clearTimeout'>;
}

const guards = new WeakMap<object, FloodGuard>();
const BYPASS = Symbol('replug.log.bypass');

export async function createLogger(options: LoggerOptions = {}): Promise<Logger> {
  const level = options.level ?? 'info';
  const base = options.base ?? {};
  let stream: DestinationStream;
  if (options.pretty) {
    const { default: pretty } = await import('pino-pretty');
    stream = pretty({
      destination: (options.destination as NodeJS.WritableStream | undefined) ?? process.stdout,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      // Readable lines like the original tool's; the structured fields are there in JSON mode.
      hideObject: true,
      sync: true,
    });
  } else {
    stream = (options.destination as DestinationStream | undefined) ?? pino.destination(1);
  }
  if (options.flood === false) return pino({ level, base }, stream);

  let root: Logger | undefined;
  const guard = new FloodGuard(
    options.clock ?? systemClock,
    (lvl, fields, msg) => {
      const name = pino.levels.labels[lvl] as 'info' | 'warn' | 'error' | 'fatal' | undefined;
      if (root && name) root[name]({ ...fields, [BYPASS]: true }, msg);
    },
    { repeats: level !== 'debug' && level !== 'trace', ...options.flood },
  );
  const max = guard.maxChars;
  const guarded: PinoOptions = {
    level,
    base,
    hooks: {
      logMethod(args, method, lvl) {
        const first = args[0] as unknown;
        const hasObject = typeof first === 'object' && first !== null;
        if (hasObject && (first as Record<symbol, unknown>)[BYPASS]) {
          const { [BYPASS]: _, ...fields } = first as Record<string | symbol, unknown>;
          method.apply(this, [fields, ...args.slice(1)] as Parameters<typeof method>);
          return;
        }
        const msgAt = hasObject ? 1 : 0;
        const raw = typeof args[msgAt] === 'string' ? (args[msgAt] as string) : '';
        // Cut before grouping: the template of a 1 MB message is as long as the message.
        const msg = cutText(raw, max);
        if (!guard.admit(lvl, msg)) return;
        if (msg === raw) {
          method.apply(this, args);
          return;
        }
        const next = [...args];
        next[msgAt] = msg;
        method.apply(this, next as Parameters<typeof method>);
      },
    },
    formatters: { log: (object) => cutDeep(object, max) as Record<string, unknown> },
    serializers: { err: (err: unknown) => cutDeep(pino.stdSerializers.err(err as Error), max) },
  };
  root = pino(guarded, stream);
  guards.set(root, guard);
  return root;
}

/** Writes the repeat summaries still pending (call before the process stops). */
export function flushRepeats(log: Logger): void {
  guards.get(log)?.flush();
}

/** A logger that drops everything: for tests and library callers that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
