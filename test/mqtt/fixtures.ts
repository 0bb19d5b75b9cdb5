/** Example inputs shared by the MQTT suites: one plausible value of every payload's inputs. */
import type { HealthInput, InfoPayload, TargetSnapshot } from '../../src/mqtt/payloads.js';
import type { UsbDevice } from '../../src/usb/types.js';

export const device: UsbDevice = {
  key: 'serial:ABC123',
  vid: '1209',
  pid: '0001',
  serial: 'ABC123',
  manufacturer: 'pid.codes',
  product: 'Test device',
  bus: 1,
  address: 4,
  portPath: '1-1.4',
  speed: '480',
  bcdDevice: '0100',
  deviceClass: '00',
  devNode: '/dev/bus/usb/001/004',
};

export const info: Omit<InfoPayload, 'session' | 'ts'> = {
  agent: 'pi-kitchen',
  version: '0.1.0',
  host: 'pi-kitchen',
  arch: 'arm64',
  platform: 'linux',
  node: 'v20.20.2',
  pid: 4242,
  runtime: {
    kind: 'docker',
    label: 'container-hostnet',
    netns: 'host',
    udev: true,
    devfs: 'tmpfs',
    usbBusBind: true,
    userns: 'initial',
    usbBus: true,
  },
  sources: [
    { name: 'devfs', state: 'active' },
    {
      name: 'nusb',
      state: 'unavailable',
      reason: 'no udevd in this network namespace',
      code: 'REPLUG_SOURCE_UNAVAILABLE',
    },
  ],
  targets: ['1209:0001', '1209:0001:ABC123'],
  broker: { embedded: true, url: 'mqtt://127.0.0.1:1883' },
};

export const snapshot: TargetSnapshot = {
  target: '1209:0001:ABC123',
  vid: '1209',
  pid: '0001',
  serial: 'ABC123',
  state: 'up',
  since: Date.UTC(2026, 0, 1),
  attempts: 1,
  lastOutcome: 'failed',
  lastError: { code: 'REPLUG_USB_BUSY', message: 'device busy' },
  reconnects: { count: 3, ok: 2, failed: 1, p50Ms: 12, p95Ms: 40 },
  device,
};

export const health: HealthInput = {
  uptimeS: 12.5,
  memory: { rssBytes: 50_000_000, heapUsedBytes: 10_000_000 },
  sources: {
    devfs: { seen: 3, first: 3, missed: 0, meanLatencyMs: 0, maxLatencyMs: 0 },
    sysfs: { seen: 2, first: 0, missed: 1, meanLatencyMs: 400, maxLatencyMs: 900 },
    nusb: { seen: 0, first: 0, missed: 0, meanLatencyMs: null, maxLatencyMs: null },
  },
};
