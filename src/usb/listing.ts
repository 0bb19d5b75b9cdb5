/**
 * What `replug list` shows: the sysfs listing (authoritative identity) joined with devfs facts per device
 * (is the usbfs node there, does it read as a device descriptor). A container that sees sysfs but got no
 * /dev/bus/usb bind mount shows "node: missing" here — the first thing to check when sessions cannot open.
 * Nodes without a sysfs entry (only /dev/bus/usb bind-mounted) are listed from their descriptor.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoOf } from '../errors.js';
import { deviceFromDescriptor, parseDeviceDescriptor } from './descriptor.js';
import { readNodeHead } from './devfs-read.js';
import { devNodePath, listSysfsDevices, noBusReason } from './sysfs-read.js';
import type { UsbDevice } from './types.js';

export type NodeState = 'ok' | 'missing' | 'unreadable' | 'bad-descriptor';

export interface ListedDevice extends UsbDevice {
  rootHub: boolean;
  /** Where the identity came from: sysfs, or the node's descriptor alone. */
  from: 'sysfs' | 'devfs';
  node: { path: string; state: NodeState; detail?: string };
}

export type Listing = { bus: false; reason: string; devices: [] } | { bus: true; devices: ListedDevice[] };

export interface ListingOptions {
  sysfsRoot: string;
  devfsRoot: string;
  includeRootHubs?: boolean;
}

export async function collectListing(options: ListingOptions): Promise<Listing> {
  const { sysfsRoot, devfsRoot } = options;
  const sys = await listSysfsDevices(sysfsRoot, { devfsRoot, includeRootHubs: options.includeRootHubs });
  const nodes = await listDevfsNodes(devfsRoot);
  if (!sys.bus && nodes === undefined) return { bus: false, reason: noBusReason(sysfsRoot), devices: [] };
  const seen = new Set<string>();
  // Probed together, not one after the other: the bounded reader keeps at most its 16 reads open, and
  // 1,000 probes in a row were a thread-pool round trip each for `replug list` (issue 17).
  const devices: ListedDevice[] = await Promise.all(
    (sys.bus ? sys.devices : []).map(async (d) => {
      const path = devNodePath(devfsRoot, d.bus, d.address);
      seen.add(`${d.bus}-${d.address}`);
      const rootHub = d.portPath === undefined && d.address === 1;
      return { ...d, devNode: path, rootHub, from: 'sysfs' as const, node: await probeNode(path) };
    }),
  );
  for (const { bus, address } of nodes ?? []) {
    if (seen.has(`${bus}-${address}`)) continue;
    if (address === 1 && !options.includeRootHubs) continue;
    const path = devNodePath(devfsRoot, bus, address);
    const node = await probeNode(path);
    const desc = node.state === 'ok' ? parseDeviceDescriptor(await readNodeHead(path, 64)) : undefined;
    if (!desc?.ok) continue; // a node we cannot identify has nothing to show
    const device = deviceFromDescriptor(desc.descriptor, { bus, address });
    devices.push({ ...device, devNode: path, rootHub: address === 1, from: 'devfs', node });
  }
  devices.sort((a, b) => a.bus - b.bus || a.address - b.address);
  return { bus: true, devices };
}

async function listDevfsNodes(devfsRoot: string): Promise<{ bus: number; address: number }[] | undefined> {
  const root = join(devfsRoot, 'bus', 'usb');
  let buses: string[];
  try {
    buses = (await readdir(root)).filter((b) => /^\d{3}$/.test(b));
  } catch {
    return undefined;
  }
  const out: { bus: number; address: number }[] = [];
  for (const b of buses) {
    const names = await readdir(join(root, b)).catch(() => [] as string[]);
    for (const n of names) if (/^\d{3}$/.test(n)) out.push({ bus: Number(b), address: Number(n) });
  }
  return out;
}

export async function probeNode(path: string): Promise<ListedDevice['node']> {
  let data: Buffer;
  try {
    data = await readNodeHead(path, 64);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') return { path, state: 'missing' };
    return { path, state: 'unreadable', detail: errno ?? String(err) };
  }
  const parsed = parseDeviceDescriptor(data);
  return parsed.ok ? { path, state: 'ok' } : { path, state: 'bad-descriptor', detail: parsed.reason };
}

const NODE_TEXT: Record<NodeState, string> = {
  ok: 'ok',
  missing: 'missing',
  unreadable: 'no-access',
  'bad-descriptor': 'bad',
};

/** An lsusb-like table: one line per device, columns padded to their widest cell. */
export function formatTable(devices: readonly ListedDevice[]): string {
  const header = ['BUS', 'DEV', 'ID', 'PORT', 'SPEED', 'NODE', 'SERIAL', 'DESCRIPTION'];
  const rows = devices.map((d) => [
    String(d.bus).padStart(3, '0'),
    String(d.address).padStart(3, '0'),
    `${d.vid}:${d.pid}`,
    d.portPath ?? (d.rootHub ? `usb${d.bus}` : '-'),
    d.speed ? `${d.speed}M` : '-',
    NODE_TEXT[d.node.state],
    d.serial ?? '-',
    [d.manufacturer, d.product].filter(Boolean).join(' ') || (d.from === 'devfs' ? '(from devfs only)' : ''),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Stable JSON: the UsbDevice fields plus node facts; IDs as 4-digit lowercase hex strings. */
export function toJson(devices: readonly ListedDevice[]): string {
  return JSON.stringify(devices);
}
