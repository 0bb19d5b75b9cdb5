/**
 * Which present device a target's session should use. Several devices can match one target (two boards
 * with the same VID:PID and no serial filter); the choice must be deterministic so logs and topics do not
 * flap: the earliest seen wins, ties broken by bus then address.
 */
import type { TargetSpec } from '../usb/ids.js';
import { instanceId, type UsbDevice } from '../usb/types.js';

export interface Candidate {
  device: UsbDevice;
  /** Monotonic ms on the session's clock when the device was first seen. */
  seenAt: number;
}

export function matchesTarget(
  target: TargetSpec,
  device: Pick<UsbDevice, 'vid' | 'pid' | 'serial'>,
): boolean {
  const vid = device.vid?.toLowerCase();
  const pid = device.pid?.toLowerCase();
  // Any of the target's IDs (TargetSpec.alt: a device that re-enumerates under another ID, issue 15).
  const ids = [target, ...(target.alt ?? [])];
  if (!ids.some((id) => id.vid.toLowerCase() === vid && id.pid.toLowerCase() === pid)) return false;
  return target.serial === undefined || device.serial === target.serial;
}

export class CandidateSet {
  private readonly byInstance = new Map<string, Candidate>();

  constructor(private readonly target: TargetSpec) {}

  /** Adds a matching device; false when it does not match or is already known (sources repeat adds). */
  add(device: UsbDevice, seenAt: number): boolean {
    if (!matchesTarget(this.target, device)) return false;
    const id = instanceId(device);
    if (this.byInstance.has(id)) return false;
    this.byInstance.set(id, { device, seenAt });
    return true;
  }

  /** Removes by bus+address (a removal event may carry nothing else); returns what was removed. */
  remove(device: Pick<UsbDevice, 'bus' | 'address'>): Candidate | undefined {
    const id = instanceId(device);
    const found = this.byInstance.get(id);
    this.byInstance.delete(id);
    return found;
  }

  best(): Candidate | undefined {
    let best: Candidate | undefined;
    for (const c of this.byInstance.values()) {
      if (!best || compare(c, best) < 0) best = c;
    }
    return best;
  }

  get size(): number {
    return this.byInstance.size;
  }

  clear(): void {
    this.byInstance.clear();
  }
}

function compare(a: Candidate, b: Candidate): number {
  return a.seenAt - b.seenAt || a.device.bus - b.device.bus || a.device.address - b.device.address;
}
