/**
 * What this agent announced in earlier runs, kept in the state dir as `announced.json` (issue 10): the
 * target topics it gave a retained state, and the Home Assistant components it announced. At start the
 * agent clears what it no longer has (an empty retained payload; HA's `{"p": ...}` removal form), so a
 * target taken out of the configuration does not stay on the broker and in HA forever.
 *
 * The file is small and rewritten whole (temp file + rename). A file that cannot be read or parsed is
 * reported once and the agent starts from nothing: announcing again is harmless; refusing to start is not.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../errors.js';
import type { Logger } from '../log.js';
import { isValidTargetTopicKey } from '../mqtt/topics.js';

export const ANNOUNCED_FILE = 'announced.json';

export interface Announced {
  /** Target topic keys (`1209-0001`) with a retained state on the broker. */
  targets: string[];
  /** Home Assistant: the discovery prefix and component id -> platform of what HA was told. */
  homeassistant?: { prefix: string; components: Record<string, string> };
}

function valid(value: unknown): Announced | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.targets) || !v.targets.every((t) => typeof t === 'string' && isValidTargetTopicKey(t)))
    return undefined;
  const out: Announced = { targets: [...(v.targets as string[])] };
  const ha = v.homeassistant as Record<string, unknown> | undefined;
  if (ha !== undefined) {
    const components = ha.components as Record<string, unknown> | undefined;
    if (typeof ha.prefix !== 'string' || !components || typeof components !== 'object') return undefined;
    if (!Object.values(components).every((p) => typeof p === 'string')) return undefined;
    out.homeassistant = { prefix: ha.prefix, components: { ...(components as Record<string, string>) } };
  }
  return out;
}

export class AnnouncedStore {
  private writing: Promise<void> = Promise.resolve();
  private warned = false;

  private constructor(
    private readonly file: string,
    private value: Announced,
    private readonly log: Logger,
  ) {}

  static async load(stateDir: string, log: Logger): Promise<AnnouncedStore> {
    const file = join(stateDir, ANNOUNCED_FILE);
    let value: Announced = { targets: [] };
    try {
      const parsed = valid(JSON.parse(await readFile(file, 'utf8')));
      if (parsed) value = parsed;
      else log.warn({ file }, `${file} is not what the agent writes; starting from nothing announced`);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT')
        log.warn(
          { file, err: errnoOf(err) ?? String(err) },
          `cannot read ${file}; starting from nothing announced`,
        );
    }
    return new AnnouncedStore(file, value, log);
  }

  get(): Announced {
    return structuredClone(this.value);
  }

  /** Changes the record and writes it (writes are serialised; a failed write is said once). */
  update(change: (current: Announced) => Announced): Promise<void> {
    this.value = change(this.get());
    const text = `${JSON.stringify(this.value)}\n`;
    this.writing = this.writing.then(async () => {
      try {
        await writeFile(`${this.file}.tmp`, text);
        await rename(`${this.file}.tmp`, this.file);
      } catch (err) {
        if (!this.warned)
          this.log.warn(
            { err: errnoOf(err) ?? String(err) },
            `cannot write ${this.file}; what was announced may be left behind`,
          );
        this.warned = true;
      }
    });
    return this.writing;
  }
}
