/** Builds what a usbfs node returns on read (USB 2.0 spec §9.6.1 and §9.6.3), for fakes and tests. */
/** usbfs node content: 18-byte device descriptor + one configuration with one vendor interface. */
export function encodeDescriptors(d: {
  vid: number;
  pid: number;
  bcdDevice?: number;
  deviceClass?: number;
  hasStrings?: { manufacturer: boolean; product: boolean; serial: boolean };
  bcdUSB?: number;
}): Buffer {
  const dev = Buffer.alloc(18);
  dev.writeUInt8(18, 0); // bLength
  dev.writeUInt8(1, 1); // bDescriptorType = DEVICE
  dev.writeUInt16LE(d.bcdUSB ?? 0x0200, 2);
  dev.writeUInt8(d.deviceClass ?? 0, 4);
  dev.writeUInt8(0, 5); // bDeviceSubClass
  dev.writeUInt8(0, 6); // bDeviceProtocol
  dev.writeUInt8(64, 7); // bMaxPacketSize0
  dev.writeUInt16LE(d.vid & 0xffff, 8);
  dev.writeUInt16LE(d.pid & 0xffff, 10);
  dev.writeUInt16LE(d.bcdDevice ?? 0x0100, 12);
  dev.writeUInt8(d.hasStrings?.manufacturer ? 1 : 0, 14);
  dev.writeUInt8(d.hasStrings?.product ? 2 : 0, 15);
  dev.writeUInt8(d.hasStrings?.serial ? 3 : 0, 16);
  dev.writeUInt8(1, 17); // bNumConfigurations
  // Configuration descriptor (9) + interface descriptor (9), wTotalLength = 18.
  const cfg = Buffer.from([9, 2, 18, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 0, 0xff, 0, 0, 0]);
  return Buffer.concat([dev, cfg]);
}
