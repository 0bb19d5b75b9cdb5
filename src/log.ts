/**
 * pino with an injected destination (the pino habit): tests read log lines back as JSON. On a TTY the
 * agent prints readable lines through pino-pretty; otherwise JSON lines.
 */
import { type DestinationStream, type LevelWithSilent, type Logger as PinoLogger, pino } from 'pino';

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
}

export async function createLogger(options: LoggerOptions = {}): Promise<Logger> {
  const level = options.level ?? 'info';
  const base = options.base ?? {};
  if (options.pretty) {
    const { default: pretty } = await import('pino-pretty');
    const stream = pretty({
      destination: (options.destination as NodeJS.WritableStream | undefined) ?? process.stdout,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      // Readable lines like the original tool's; the structured fields are there in JSON mode.
      hideObject: true,
      sync: true,
    });
    return pino({ level, base }, stream);
  }
  return pino({ level, base }, (options.destination as DestinationStream | undefined) ?? pino.destination(1));
}

/** A logger that drops everything: for tests and library callers that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
