/**
 * Helpers for "parse everything, report every problem at once" (habit 6). Environment values are read with
 * env-var from an injected env object, so tests pass a plain record and nothing reads process.env.
 */
import envVar from 'env-var';

export class Problems {
  readonly list: string[] = [];
  add(problem: string): void {
    this.list.push(problem);
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
}

export type Env = Record<string, string | undefined>;

/**
 * Runs one env-var read and turns its EnvVarError into a problem line naming the variable. Returns
 * undefined on error so parsing goes on and every problem is reported together.
 */
type EnvReader = ReturnType<typeof envVar.from<Record<string, string | undefined>, Record<never, never>>>;

export function readEnv<T>(problems: Problems, read: (env: EnvReader) => T, env: Env): T | undefined {
  try {
    return read(envVar.from<Record<string, string | undefined>, Record<never, never>>(env));
  } catch (err) {
    // env-var's messages read: 'env-var: "REPLUG_BROKER_PORT" should be a valid integer'
    problems.add(String(err instanceof Error ? err.message : err).replace(/^env-var:\s*/, ''));
    return undefined;
  }
}

export function parseIntFlag(
  problems: Problems,
  name: string,
  value: string | undefined,
  range: { min: number; max: number },
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) {
    problems.add(`${name} must be a whole number, got "${value}"`);
    return undefined;
  }
  const n = Number.parseInt(value, 10);
  if (n < range.min || n > range.max) {
    problems.add(`${name} must be between ${range.min} and ${range.max}, got ${n}`);
    return undefined;
  }
  return n;
}

/** Agent ids become topic levels: `[a-z0-9-]+`. Hostnames are folded into that shape. */
export function sanitizeAgentId(host: string): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return id || 'replug';
}

export const AGENT_ID_PATTERN = /^[a-z0-9-]+$/;
