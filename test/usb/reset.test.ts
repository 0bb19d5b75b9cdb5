import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { createUsbReset, type ResettableDevice } from '../../src/usb/reset.js';
import type { UsbDevice } from '../../src/usb/types.js';

const device: UsbDevice = {
  key: 'port:1-1.4',
  vid: '10c4',
  pid: 'ea60',
  bus: 1,
  address: 7,
  portPath: '1-1.4',
};

function fake(over: Partial<ResettableDevice> = {}, calls: string[] = []): ResettableDevice {
  return {
    vendorId: 0x10c4,
    productId: 0xea60,
    bus: '1',
    address: 7,
    ports: [1, 4],
    open: async () => void calls.push('open'),
    close: async () => void calls.push('close'),
    reset: async () => void calls.push('reset'),
    selectConfiguration: async () => {},
    claimInterface: async () => {},
    releaseInterface: async () => {},
    detachKernelDriver: async () => {},
    controlTransferIn: async () => ({ status: 'ok' }),
    ...over,
  };
}

describe('USB reset (usb@3 device.reset, USBDEVFS_RESET)', () => {
  it('opens the device at the session bus and address, resets it and closes it', async () => {
    const calls: string[] = [];
    const other = fake({ address: 9, open: async () => void calls.push('WRONG') });
    const reset = createUsbReset(async () => ({ usb: { getDevices: async () => [other, fake({}, calls)] } }));
    await reset(device);
    expect(calls).toEqual(['open', 'reset', 'close']);
  });

  it('a reset that re-enumerates (the old handle reports the device gone) counts as done', async () => {
    const calls: string[] = [];
    const gone = fake(
      {
        reset: async () => {
          throw new Error('reset error: No such device (os error 19)');
        },
      },
      calls,
    );
    await createUsbReset(async () => ({ usb: { getDevices: async () => [gone] } }))(device);
    expect(calls).toEqual(['open', 'close']);
  });

  it('an absent device and a refused open carry their codes', async () => {
    const none = createUsbReset(async () => ({ usb: { getDevices: async () => [] } }));
    await expect(none(device)).rejects.toMatchObject({ code: ErrorCodes.USB_GONE });
    const denied = fake({
      open: async () => {
        throw new Error('open error: Permission denied (os error 13)');
      },
    });
    const refused = createUsbReset(async () => ({ usb: { getDevices: async () => [denied] } }));
    await expect(refused(device)).rejects.toMatchObject({ code: ErrorCodes.USB_ACCESS });
  });
});
