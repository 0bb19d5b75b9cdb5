/**
 * A device first reported without its serial (a uevent has no strings; devfs reads the descriptor while
 * the device lock holds the string attributes) gets it from a later source's view. A target named by its
 * serial must match then: in the lab's two-target run the serial adapter's add came from uevent and its
 * session never came up (container 4/5).
 */
import { describe, expect, it } from 'vitest';
import type { UsbDevice } from '../../src/usb/types.js';
import { UsbWatcher } from '../../src/usb/watcher.js';
import { FakeClock } from '../fakes/clock.js';
import { FakeSource } from '../fakes/source.js';

const bare: UsbDevice = { key: 'addr:1-7', vid: '0403', pid: '6001', bus: 1, address: 7 };
const full: UsbDevice = { ...bare, serial: 'LAB-SERIAL', portPath: '1-4.6' };

describe('UsbWatcher: a serial that arrives after the add', () => {
  it('says device.identified once, with the merged device, and adds nothing', async () => {
    const clock = new FakeClock();
    const uevent = new FakeSource('uevent', { clock });
    const devfs = new FakeSource('devfs', { clock });
    const watcher = new UsbWatcher({ sources: [uevent, devfs], clock, settleMs: 200 });
    const seen: string[] = [];
    watcher.on('device.added', (e) => seen.push(`added ${e.device.serial ?? '-'}`));
    watcher.on('device.identified', (e) => seen.push(`identified ${e.device.serial} ${e.device.portPath}`));
    await watcher.start();
    uevent.add(bare);
    devfs.add(full);
    uevent.add(bare); // a repeat without the serial changes nothing
    await clock.advance(250);
    expect(seen).toEqual(['added -', 'identified LAB-SERIAL 1-4.6']);
    expect(watcher.current()[0]?.serial).toBe('LAB-SERIAL');
    await watcher.stop();
  });

  it('a serial learnt later is a change of the device list (the retained devices topic follows it)', async () => {
    const clock = new FakeClock();
    const devfs = new FakeSource('devfs', { clock });
    const watcher = new UsbWatcher({ sources: [devfs], clock, settleMs: 200 });
    const lists: string[] = [];
    const off = watcher.onDevicesChanged(
      () =>
        lists.push(
          watcher
            .current()
            .map((d) => d.serial ?? '-')
            .join(','),
        ),
      { intervalMs: 100, exactUpTo: 64 },
    );
    await watcher.start();
    devfs.add(bare); // devfs reports before the strings (they wait for the device lock)
    devfs.add(full); // ... and again once they are read
    expect(lists).toEqual(['-', 'LAB-SERIAL']);
    off();
    await watcher.stop();
  });
});
