/**
 * Pure parsers for the kernel text files doctor reads. Kept apart from file reading (the MQTTX habit) so
 * they are tested on real captured text, and so a malformed line never throws: doctor must report, not crash.
 */

/** One line of /proc/<pid>/mountinfo (proc(5)): `id parent major:minor root mountpoint opts [optional...] - fstype source superopts`. */
export interface MountEntry {
  root: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

// proc(5): mountinfo escapes space, tab, newline and backslash as octal (\040, \011, \012, \134).
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const sep = fields.indexOf('-');
    // Ten-field lines exist too (`major:minor root mountpoint ...` without ids), as some tools print them:
    // find the mount point relative to the first major:minor field rather than by fixed index.
    const devIdx = fields.findIndex((f) => /^\d+:\d+$/.test(f));
    if (sep < 0 || devIdx < 0 || devIdx + 3 > sep) continue;
    const root = fields[devIdx + 1];
    const mountPoint = fields[devIdx + 2];
    const opts = fields[devIdx + 3];
    const fsType = fields[sep + 1];
    if (!root || !mountPoint || !opts || !fsType) continue;
    entries.push({
      root: unescapeOctal(root),
      mountPoint: unescapeOctal(mountPoint),
      options: opts.split(','),
      fsType,
      source: unescapeOctal(fields[sep + 2] ?? ''),
      superOptions: (fields[sep + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return entries;
}

/** The entry that is visible at a mount point: the last one mounted there wins (mounts stack). */
export function mountAt(entries: readonly MountEntry[], mountPoint: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const e of entries) if (e.mountPoint === mountPoint) found = e;
  return found;
}

/** One line of /proc/<pid>/cgroup (cgroups(7)): `hierarchy-id:controller-list:path`; v2 is `0::path`. */
export interface CgroupLine {
  id: string;
  controllers: string[];
  path: string;
}

export function parseCgroup(text: string): CgroupLine[] {
  const lines: CgroupLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    lines.push({
      id: line.slice(0, first),
      controllers: controllers ? controllers.split(',') : [],
      path: line.slice(second + 1),
    });
  }
  return lines;
}

export type CgroupVersion = 'v1' | 'v2' | 'hybrid' | 'unknown';

export function cgroupVersion(lines: readonly CgroupLine[]): CgroupVersion {
  const v2 = lines.some((l) => l.id === '0' && l.controllers.length === 0);
  const v1 = lines.some((l) => l.id !== '0');
  if (v1 && v2) return 'hybrid';
  if (v1) return 'v1';
  if (v2) return 'v2';
  return 'unknown';
}

/** user_namespaces(7): each uid_map line is `inside outside count`. */
export interface IdMapLine {
  inside: number;
  outside: number;
  count: number;
}

export function parseIdMap(text: string): IdMapLine[] {
  const out: IdMapLine[] = [];
  for (const raw of text.split('\n')) {
    const parts = raw.trim().split(/\s+/).map(Number);
    if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n))) continue;
    const [inside, outside, count] = parts as [number, number, number];
    out.push({ inside, outside, count });
  }
  return out;
}

/** The initial user namespace maps every id to itself: exactly `0 0 4294967295` (user_namespaces(7)). */
export function isIdentityMap(lines: readonly IdMapLine[]): boolean {
  return (
    lines.length === 1 && lines[0]?.inside === 0 && lines[0].outside === 0 && lines[0].count === 4294967295
  );
}

/** `/proc/self/ns/net` is a magic link reading `net:[4026531833]`: return the inode. */
export function parseNsLink(target: string): number | undefined {
  const m = /^[a-z_]+:\[(\d+)\]$/.exec(target.trim());
  return m?.[1] ? Number(m[1]) : undefined;
}

/** Interface names from /proc/net/dev (two header lines, then `name: counters...`). */
export function parseNetDev(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([^\s:|]+):/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

/** /proc/<pid>/environ is NUL-separated `KEY=value`. */
export function parseEnviron(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split('\0')) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/**
 * cgroup v1 devices.list lines: `type major:minor access`, type a|b|c, `*` wildcards (kernel
 * Documentation/admin-guide/cgroup-v1/devices.rst).
 */
export interface DeviceRule {
  type: 'a' | 'b' | 'c';
  major: number | '*';
  minor: number | '*';
  access: string;
}

export function parseDevicesList(text: string): DeviceRule[] {
  const rules: DeviceRule[] = [];
  for (const raw of text.split('\n')) {
    const m = /^([abc])\s+(\*|\d+):(\*|\d+)\s+([rwm]+)$/.exec(raw.trim());
    if (!m) continue;
    const num = (s: string) => (s === '*' ? '*' : Number(s));
    rules.push({ type: m[1] as DeviceRule['type'], major: num(m[2]!), minor: num(m[3]!), access: m[4]! });
  }
  return rules;
}

/** usbfs nodes are char major 189 (Documentation/admin-guide/devices.txt: "189 char USB serial..."/usb_device). */
export const USB_DEVICE_MAJOR = 189;

/** How a v1 device whitelist treats usbfs nodes: every one, only some minors (snapshot), or none. */
export function usbRuleCoverage(rules: readonly DeviceRule[]): 'all' | 'some' | 'none' {
  const readable = rules.filter((r) => r.access.includes('r'));
  const all = readable.some(
    (r) =>
      r.type === 'a' ||
      (r.type === 'c' && (r.major === '*' || r.major === USB_DEVICE_MAJOR) && r.minor === '*'),
  );
  if (all) return 'all';
  const some = readable.some((r) => r.type === 'c' && r.major === USB_DEVICE_MAJOR);
  return some ? 'some' : 'none';
}

/** `6.18.44-fc-v657` -> [6, 18]; undefined when unreadable. */
export function parseKernelVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function kernelAtLeast(version: [number, number] | undefined, major: number, minor: number): boolean {
  if (!version) return false;
  return version[0] > major || (version[0] === major && version[1] >= minor);
}
