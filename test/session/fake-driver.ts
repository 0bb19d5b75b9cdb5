/**
 * A scripted SessionDriver for session tests: each open/probe/close follows the next step of its script
 * (or the default), and the driver records which handles are open so tests can assert nothing dangles.
 */
import { ErrorCodes, ReplugError } from '../../src/errors.js';
import type { DriverContext, SessionDriver } from '../../src/session/drivers/types.js';
import type { UsbDevice } from '../../src/usb/types.js';
import { type Clock, sleep } from '../../src/util/clock.js';

export type Step =
  | { kind: 'ok'; afterMs?: number }
  | { kind: 'fail'; code?: string; afterMs?: number }
  /** Waits until aborted, then rejects (a well-behaved driver stuck in I/O). */
  | { kind: 'hang' }
  /** Never settles, ignoring the abort signal (a badly behaved driver). */
  | { kind: 'hang-deaf' }
  /** Ignores the signal and resolves after afterMs anyway. */
  | { kind: 'late-ok'; afterMs: number };

export interface FakeHandle {
  id: number;
  device: UsbDevice;
}

export class FakeDriver implements SessionDriver<FakeHandle> {
  readonly name = 'fake';
  readonly open_: Step[] = [];
  readonly probe_: Step[] = [];
  readonly close_: Step[] = [];
  readonly openHandles = new Set<number>();
  opens = 0;
  probes = 0;
  closes = 0;
  private nextId = 1;

  constructor(
    private readonly clock: Clock,
    readonly probeIntervalMs = 1000,
  ) {}

  private async step(step: Step | undefined, signal: AbortSignal): Promise<void> {
    const s = step ?? { kind: 'ok' };
    switch (s.kind) {
      case 'ok':
        if (s.afterMs) await sleep(this.clock, s.afterMs, signal);
        return;
      case 'fail':
        if (s.afterMs) await sleep(this.clock, s.afterMs, signal);
        throw new ReplugError(
          (s.code as typeof ErrorCodes.USB_BUSY) ?? ErrorCodes.USB_BUSY,
          'scripted failure',
        );
      case 'hang':
        await new Promise((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
        return;
      case 'hang-deaf':
        await new Promise(() => {});
        return;
      case 'late-ok':
        await sleep(this.clock, s.afterMs);
        return;
    }
  }

  async open(device: UsbDevice, ctx: DriverContext): Promise<FakeHandle> {
    this.opens++;
    await this.step(this.open_.shift(), ctx.signal);
    const handle = { id: this.nextId++, device };
    this.openHandles.add(handle.id);
    return handle;
  }

  async probe(_handle: FakeHandle, ctx: DriverContext): Promise<void> {
    this.probes++;
    await this.step(this.probe_.shift(), ctx.signal);
  }

  async close(handle: FakeHandle, ctx: DriverContext): Promise<void> {
    this.closes++;
    const step = this.close_.shift();
    // A close that times out still counts as released from the driver's point of view for leak checks
    // only when it eventually returns; a deaf hang stays open on purpose.
    await this.step(step, ctx.signal);
    this.openHandles.delete(handle.id);
  }
}

export function device(address: number, extra: Partial<UsbDevice> = {}): UsbDevice {
  return {
    key: extra.serial ? `serial:${extra.serial}` : 'port:1-1',
    vid: '1209',
    pid: '0001',
    bus: 1,
    address,
    portPath: '1-1',
    ...extra,
  };
}
