import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, ReplugError } from '../../../src/errors.js';
import { parseKernelUevent, usbIdentity } from '../../../src/usb/kernel/uevent.js';
import { UeventSource } from '../../../src/usb/sources/uevent.js';
import type { SourceEvent, SourceStatus } from '../../../src/usb/types.js';
import { FakeClock } from '../../fakes/clock.js';
import fixture from '../../fixtures/uevent/udevd-252-net-cpu.json' with { type: 'json' };
import { FakeNetlinkSocket } from '../../relay/fake-netlink.js';
import { kernelMessage, USB_DEVPATH, usbDeviceUevent, usbInterfaceUevent } from '../../relay/usb-uevents.js';

const realKernel = fixture.filter((m) => m.group === 1).map((m) => Buffer.from(m.hex, 'hex'));

describe('parseKernelUevent', () => {
  it('parses real kernel datagrams captured on this kind of machine', () => {
    const ev = parseKernelUevent(realKernel[0]!)!;
    expect(ev.action).toBe('add');
    expect(ev.devpath).toBe('/devices/virtual/net/lo');
    expect([...ev.properties.keys()]).toEqual([
      'ACTION',
      'DEVPATH',
      'SUBSYSTEM',
      'SYNTH_UUID',
      'INTERFACE',
      'IFINDEX',
      'SEQNUM',
    ]);
    expect(ev.properties.get('SUBSYSTEM')).toBe('net');
    expect(parseKernelUevent(realKernel[2]!)!.action).toBe('remove');
  });

  it('rejects udev-format and malformed datagrams', () => {
    const udev = Buffer.from(fixture.find((m) => m.group === 2)!.hex, 'hex');
    expect(parseKernelUevent(udev)).toBeUndefined();
    expect(parseKernelUevent(Buffer.from('garbage\0A=B\0'))).toBeUndefined();
    expect(parseKernelUevent(Buffer.alloc(0))).toBeUndefined();
  });

  it('reads a USB device identity: IDs padded, bus/devnum decimal, port path from DEVPATH', () => {
    const id = usbIdentity(parseKernelUevent(usbDeviceUevent('add', { product: '46d/c52b/1211' }))!);
    expect(id).toEqual({
      vid: '046d',
      pid: 'c52b',
      bcdDevice: '1211',
      bus: 1,
      address: 4,
      portPath: '1-1.4',
      devName: 'bus/usb/001/004',
      deviceClass: '00',
    });
  });

  it('ignores interfaces and non-USB devices', () => {
    expect(usbIdentity(parseKernelUevent(usbInterfaceUevent('add'))!)).toBeUndefined();
    expect(usbIdentity(parseKernelUevent(realKernel[0]!)!)).toBeUndefined();
  });
});

describe('UeventSource', () => {
  let root: string;
  let socket: FakeNetlinkSocket;
  let clock: FakeClock;
  let events: SourceEvent[];
  let statuses: SourceStatus[];
  const listener = {
    event: (e: SourceEvent) => events.push(e),
    status: (s: SourceStatus) => statuses.push(s),
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'replug-uevent-'));
    await mkdir(join(root, 'proc/self'), { recursive: true });
    await writeFile(join(root, 'proc/self/uid_map'), '         0          0 4294967295\n');
    socket = new FakeNetlinkSocket();
    clock = new FakeClock();
    events = [];
    statuses = [];
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  function source() {
    return new UeventSource({
      openSocket: async () => socket,
      clock,
      sysfsRoot: join(root, 'sys'),
      devRoot: '/dev',
      procRoot: join(root, 'proc'),
    });
  }

  it('binds group 1 and turns USB device add/remove into source events enriched from sysfs', async () => {
    const dir = join(root, 'sys', USB_DEVPATH);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'serial'), 'SN42\n');
    await writeFile(join(dir, 'product'), 'Widget\n');
    await writeFile(join(dir, 'speed'), '480\n');
    const src = source();
    await src.start(listener);
    expect(socket.groups).toEqual([1]);
    expect(statuses.at(-1)).toEqual({ state: 'active' });

    socket.deliver(usbInterfaceUevent('add'));
    socket.deliver(usbDeviceUevent('add'));
    await vi.waitFor(() => expect(events).toHaveLength(1)); // sysfs reads are real file I/O
    expect(events[0]).toMatchObject({
      type: 'added',
      source: 'uevent',
      at: 0,
      device: {
        key: 'serial:SN42',
        vid: '1209',
        pid: '0001',
        bus: 1,
        address: 4,
        portPath: '1-1.4',
        serial: 'SN42',
        product: 'Widget',
        speed: '480',
        devNode: '/dev/bus/usb/001/004',
      },
    });
    expect(await src.list()).toHaveLength(1);

    await rm(dir, { recursive: true });
    socket.deliver(usbDeviceUevent('remove'));
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events[1]).toMatchObject({ type: 'removed', device: { key: 'serial:SN42', bus: 1, address: 4 } });
    expect(await src.list()).toHaveLength(0);

    await src.stop();
    expect(socket.closed).toBe(true);
    expect(socket.listenerCount).toBe(0);
  });

  it('reports a remove it never saw added with what the uevent carries', async () => {
    const src = source();
    await src.start(listener);
    socket.deliver(usbDeviceUevent('remove', { devnum: '009' }));
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events).toEqual([
      expect.objectContaining({
        type: 'removed',
        device: expect.objectContaining({ key: 'port:1-1.4', address: 9, vid: '1209' }),
      }),
    ]);
    await src.stop();
  });

  it('ignores group-1 datagrams not sent by the kernel, bind/unbind, and other subsystems', async () => {
    const src = source();
    await src.start(listener);
    socket.deliver(usbDeviceUevent('add'), { port: 1234, groups: 1 });
    socket.deliver(usbDeviceUevent('bind'));
    socket.deliver(realKernel[0]!);
    socket.deliver(kernelMessage('add@/devices/x', [['ACTION', 'add']]));
    await src.stop(); // stop() waits for queued handling: nothing may arrive after it
    expect(events).toEqual([]);
  });

  it('is unavailable, with the reason, inside a user namespace', async () => {
    await writeFile(join(root, 'proc/self/uid_map'), '         0     100000      65536\n');
    let opened = false;
    const src = new UeventSource({
      openSocket: async () => {
        opened = true;
        return socket;
      },
      procRoot: join(root, 'proc'),
    });
    await src.start(listener);
    expect(opened).toBe(false);
    expect(statuses.at(-1)).toMatchObject({
      state: 'unavailable',
      code: ErrorCodes.SOURCE_UNAVAILABLE,
      reason: expect.stringContaining('initial user namespace'),
    });
    await src.stop();
  });

  it('is unavailable, never throwing, when the socket cannot be opened', async () => {
    const src = new UeventSource({
      openSocket: async () => {
        throw new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, 'the netlink package could not be loaded (x)');
      },
      procRoot: join(root, 'proc'),
    });
    await expect(src.start(listener)).resolves.toBeUndefined();
    expect(statuses.at(-1)).toMatchObject({
      state: 'unavailable',
      reason: 'kernel uevents: the netlink package could not be loaded (x)',
    });
    await src.stop();
  });

  it('counts socket errors (lost uevents) without changing state', async () => {
    const src = source();
    await src.start(listener);
    socket.fail(Object.assign(new Error('overrun'), { code: 'ENOBUFS' }));
    expect(src.stats()).toEqual({ socketErrors: 1, lastError: 'ENOBUFS' });
    expect(statuses.at(-1)).toEqual({ state: 'active' });
    await src.stop();
  });
});
