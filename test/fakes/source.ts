/**
 * A DeviceSource that tests drive by hand: push added/removed events and status changes, and check that
 * the consumer started and stopped it. Events carry the `at` you pass, or the injected clock's monotonic().
 */

import type {
  DeviceSource,
  SourceEvent,
  SourceListener,
  SourceName,
  SourceStatus,
  UsbDevice,
} from '../../src/usb/types.js';
import type { Clock } from '../../src/util/clock.js';

export class FakeSource implements DeviceSource {
  readonly name: SourceName;
  private listener: SourceListener | undefined;
  private readonly present = new Map<string, UsbDevice>();
  private readonly clock: Pick<Clock, 'monotonic'> | undefined;
  private readonly initialStatus: SourceStatus;
  startCount = 0;
  stopCount = 0;

  /** `initialStatus` is reported on start(); `active` by default. */
  constructor(
    name: SourceName,
    options: { clock?: Pick<Clock, 'monotonic'>; initialStatus?: SourceStatus } = {},
  ) {
    this.name = name;
    this.clock = options.clock;
    this.initialStatus = options.initialStatus ?? { state: 'active' };
  }

  get running(): boolean {
    return this.listener !== undefined;
  }

  async start(listener: SourceListener): Promise<void> {
    this.startCount++;
    this.listener = listener;
    listener.status(this.initialStatus);
  }

  async stop(): Promise<void> {
    this.stopCount++;
    this.listener = undefined;
  }

  async list(): Promise<UsbDevice[]> {
    return [...this.present.values()].map((d) => ({ ...d }));
  }

  status(status: SourceStatus): void {
    this.listener?.status(status);
  }

  add(device: UsbDevice, at?: number): void {
    this.present.set(`${device.bus}-${device.address}`, device);
    this.emit({ type: 'added', source: this.name, at: at ?? this.now(), device: { ...device } });
  }

  remove(device: Pick<UsbDevice, 'bus' | 'address'> & Partial<UsbDevice>, at?: number): void {
    this.present.delete(`${device.bus}-${device.address}`);
    this.emit({ type: 'removed', source: this.name, at: at ?? this.now(), device: { ...device } });
  }

  private emit(ev: SourceEvent): void {
    this.listener?.event(ev);
  }

  private now(): number {
    return this.clock?.monotonic() ?? performance.now();
  }
}
