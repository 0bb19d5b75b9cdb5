/**
 * The watcher's gate for device values (src/usb/bounds.ts): every device a source reports is checked
 * before it is merged or emitted, and what was cut or refused is said once per device instance (issue 12,
 * "say once what was cut"), through the watcher's onValueCut option.
 */
import { boundDevice, MAX_ADDRESS, MAX_BUS, withoutControls } from './bounds.js';
import type { SourceName, UsbDevice } from './types.js';

/** One device's values that were cut or refused. */
export interface ValueNote {
  source: SourceName;
  bus: unknown;
  address: unknown;
  vid?: string;
  pid?: string;
  /** Set when the device was dropped whole (its identity is out of range). */
  ignored?: string;
  cuts: string[];
  /** One line for the log. */
  message: string;
}

/** Instances noted already; forgotten past this many (a hostile tree must not grow the set). */
const MAX_NOTED = 1024;

export function inBounds(d: Pick<UsbDevice, 'bus' | 'address'>): boolean {
  const ok = (n: unknown, max: number) => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max;
  return ok(d.bus, MAX_BUS) && ok(d.address, MAX_ADDRESS);
}

const shown = (v: unknown, max = 24) => withoutControls(String(v)).slice(0, max);

export class ValueNotes {
  /** Per device instance, the fields already said (several sources report the same device). */
  private readonly noted = new Map<string, Set<string>>();

  constructor(
    private readonly report: (note: ValueNote) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The bounded device, or undefined when it is refused. */
  check(source: SourceName, device: UsbDevice): UsbDevice | undefined {
    const checked = boundDevice(device);
    if (!checked.ok) {
      this.note(source, device, checked.reason, []);
      return undefined;
    }
    if (checked.cuts.length > 0) this.note(source, checked.device, undefined, checked.cuts);
    return checked.device;
  }

  private note(source: SourceName, d: Partial<UsbDevice>, ignored: string | undefined, all: string[]): void {
    const where = `bus ${shown(d.bus)} address ${shown(d.address)}`;
    let said = this.noted.get(where);
    if (!said) {
      if (this.noted.size >= MAX_NOTED) this.noted.clear();
      said = new Set();
      this.noted.set(where, said);
    }
    const fieldOf = (cut: string) => cut.slice(0, cut.indexOf(':'));
    const cuts = all.filter((c) => !said.has(fieldOf(c)));
    if (ignored ? said.has('ignored') : cuts.length === 0) return;
    if (ignored) said.add('ignored');
    for (const c of cuts) said.add(fieldOf(c));
    const who = `${shown(d.vid ?? '?', 8)}:${shown(d.pid ?? '?', 8)}`;
    const message = ignored
      ? `device ${who} at ${where} ignored (from ${source}): ${ignored}`
      : `device ${who} at ${where} (from ${source}): ${cuts.join('; ')}`;
    const note: ValueNote = { source, bus: d.bus, address: d.address, cuts, message };
    if (typeof d.vid === 'string') note.vid = shown(d.vid, 8);
    if (typeof d.pid === 'string') note.pid = shown(d.pid, 8);
    if (ignored) note.ignored = ignored;
    try {
      this.report(note);
    } catch (err) {
      this.onError(err);
    }
  }
}
