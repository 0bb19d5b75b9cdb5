/**
 * USB IDs. Everywhere they are printed as 4-digit lowercase hex, never signed (the original .NET tool
 * printed PID -31386 for 0x8566). Accepted as `vvvv:pppp` (hex, as lsusb prints), `0x`-hex, or — for the
 * seed's TEST_VID/TEST_PID only — decimal 0..65535.
 */

export function hex4(id: number): string {
  return (id & 0xffff).toString(16).padStart(4, '0');
}

/** Parses one 16-bit hex ID: `1209`, `0x1209`, `0X1209`. Returns undefined when malformed. */
export function parseHexId(text: string): number | undefined {
  const t = text.trim();
  const m = /^(?:0[xX])?([0-9a-fA-F]{1,4})$/.exec(t);
  if (!m?.[1]) return undefined;
  return Number.parseInt(m[1], 16);
}

/** Parses a decimal 16-bit ID as the original tool took TEST_VID/TEST_PID. Undefined when malformed. */
export function parseDecimalId(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t)) return undefined;
  const n = Number.parseInt(t, 10);
  return n >= 0 && n <= 0xffff ? n : undefined;
}

export interface TargetSpec {
  /** 4-digit lowercase hex. */
  vid: string;
  pid: string;
  serial?: string;
  /**
   * Other IDs the same device shows (`--target 1a6e:089a/18d1:9302`): Coral's USB accelerator enumerates
   * as 1a6e:089a until its firmware is loaded, then as 18d1:9302 (issue 15). The key stays the first ID.
   */
  alt?: { vid: string; pid: string }[];
}

/** `vvvv:pppp/vvvv:pppp/...` ahead of an optional `:SERIAL`: the other IDs split off the spec's text. */
function splitAltIds(text: string): { main: string; alt: string[] } | string {
  const m = /^([^:/]+:[^:/]+)((?:\/[^:/]*:[^:/]*)+)(:.*)?$/.exec(text.trim());
  if (!m) {
    if (text.includes('/') && !/^[^/]*:[^/:]*:/.test(text))
      return `"${text}" is not a target; other IDs go as vvvv:pppp/vvvv:pppp[:SERIAL]`;
    return { main: text, alt: [] };
  }
  return { main: `${m[1]}${m[3] ?? ''}`, alt: (m[2] as string).split('/').slice(1) };
}

/**
 * `vvvv:pppp` or `vvvv:pppp:SERIAL` (the serial may itself contain colons). IDs may carry `0x`.
 * Returns an error string naming what is wrong rather than throwing, so config can collect every problem.
 */
export function parseTargetSpec(text: string): TargetSpec | string {
  const split = splitAltIds(text);
  if (typeof split === 'string') return split;
  const alt: { vid: string; pid: string }[] = [];
  for (const id of split.alt) {
    const [v = '', p = '', ...extra] = id.split(':');
    const vid = parseHexId(v);
    const pid = parseHexId(p);
    if (vid === undefined || pid === undefined || extra.length > 0)
      return `"${id}" in target "${text}" is not an ID pair; expected vvvv:pppp (hex)`;
    alt.push({ vid: hex4(vid), pid: hex4(pid) });
  }
  const spec = parseOneTarget(split.main, text);
  return typeof spec === 'string' || alt.length === 0 ? spec : { ...spec, alt };
}

function parseOneTarget(main: string, text: string): TargetSpec | string {
  const parts = main.trim().split(':');
  if (parts.length < 2)
    return `"${text}" is not a target; expected vvvv:pppp or vvvv:pppp:SERIAL (hex, like lsusb prints)`;
  const [v = '', p = '', ...rest] = parts;
  const vid = parseHexId(v);
  const pid = parseHexId(p);
  if (vid === undefined)
    return `"${v}" in target "${text}" is not a vendor ID; expected 1-4 hex digits like 1209`;
  if (pid === undefined)
    return `"${p}" in target "${text}" is not a product ID; expected 1-4 hex digits like 0001`;
  const serial = rest.join(':');
  if (rest.length > 0 && serial.length === 0) return `target "${text}" ends with ':' but has no serial`;
  // A USB serial is a string descriptor: printable after the kernel's UTF-8 conversion, <= 126 units.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(serial))
    return `the serial in target ${JSON.stringify(text)} has control characters; no USB serial has them`;
  if ([...serial].length > 126)
    return `the serial in target "${text.slice(0, 20)}…" is over 126 characters, longer than any USB serial`;
  return serial ? { vid: hex4(vid), pid: hex4(pid), serial } : { vid: hex4(vid), pid: hex4(pid) };
}

/** `1209:0001` or `1209:0001:SERIAL`: the name of a target in logs and topics. */
export function targetKey(t: TargetSpec): string {
  return t.serial ? `${t.vid}:${t.pid}:${t.serial}` : `${t.vid}:${t.pid}`;
}

/** A topic-safe form of a target key: `1209-0001` or `1209-0001-<serial sanitized>`. */
export function targetTopicKey(t: TargetSpec): string {
  const base = `${t.vid}-${t.pid}`;
  if (!t.serial) return base;
  return `${base}-${t.serial.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
}
