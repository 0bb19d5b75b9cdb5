/**
 * Kernel uevents of a USB device, synthesized from the kernel's format because this machine has no USB
 * bus: lib/kobject_uevent.c `kobject_uevent_env` writes "ACTION@DEVPATH\0" then ACTION, DEVPATH,
 * SUBSYSTEM, the device core's `dev_uevent` (MAJOR, MINOR, DEVNAME, DEVTYPE, DRIVER when bound), the USB
 * core's `usb_dev_uevent` (PRODUCT=%x/%x/%x, TYPE=%d/%d/%d, BUSNUM=%03d, DEVNUM=%03d), then SEQNUM.
 */
export function kernelMessage(header: string, props: Array<[string, string]>): Buffer {
  return Buffer.from(`${header}\0${props.map(([k, v]) => `${k}=${v}\0`).join('')}`, 'utf8');
}

export const USB_DEVPATH = '/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4';

export function usbDeviceUevent(
  action: 'add' | 'remove' | 'bind' | 'unbind',
  options: { devpath?: string; product?: string; busnum?: string; devnum?: string; seqnum?: number } = {},
): Buffer {
  const devpath = options.devpath ?? USB_DEVPATH;
  const devnum = options.devnum ?? '004';
  const busnum = options.busnum ?? '001';
  const props: Array<[string, string]> = [
    ['ACTION', action],
    ['DEVPATH', devpath],
    ['SUBSYSTEM', 'usb'],
    ['MAJOR', '189'],
    ['MINOR', String((Number(busnum) - 1) * 128 + Number(devnum) - 1)],
    ['DEVNAME', `bus/usb/${busnum}/${devnum}`],
    ['DEVTYPE', 'usb_device'],
  ];
  if (action === 'bind' || action === 'unbind') props.push(['DRIVER', 'usb']);
  props.push(
    ['PRODUCT', options.product ?? '1209/1/100'],
    ['TYPE', '0/0/0'],
    ['BUSNUM', busnum],
    ['DEVNUM', devnum],
    ['SEQNUM', String(options.seqnum ?? 4242)],
  );
  return kernelMessage(`${action}@${devpath}`, props);
}

export function usbInterfaceUevent(action: 'add' | 'remove', seqnum = 4243): Buffer {
  const devpath = `${USB_DEVPATH}/1-1.4:1.0`;
  return kernelMessage(`${action}@${devpath}`, [
    ['ACTION', action],
    ['DEVPATH', devpath],
    ['SUBSYSTEM', 'usb'],
    ['DEVTYPE', 'usb_interface'],
    ['PRODUCT', '1209/1/100'],
    ['TYPE', '0/0/0'],
    ['INTERFACE', '255/0/0'],
    ['MODALIAS', 'usb:v1209p0001d0100dc00dsc00dp00icFFisc00ip00in00'],
    ['SEQNUM', String(seqnum)],
  ]);
}
