// The wedging device (issue 15): the userspace half of a FunctionFS function (guest/ffs-gadget.sh mounts it)
// that echoes bulk transfers like the Loopback gadget (OUT 4096 bytes on EP 0x02, the same bytes back on IN
// EP 0x81, so examples/drivers/bulk-loopback.mjs drives it) for N transfers, then stops answering: it queues
// no more reads or writes, so the host's transfers NAK until they time out. Only a USB bus reset or a
// reconfiguration un-wedges it: FunctionFS reports those on ep0 as DISABLE then ENABLE (a port reset, a
// SET_CONFIGURATION, `authorized` 0/1, a fresh plug), and at every ENABLE the count starts again.
//
//   node ffs-wedge.mjs MOUNT N [ANSWERS_FILE]
//
// ANSWERS_FILE, when it exists, is read at each ENABLE and replaces N from then on (0: wedged from the start,
// so a session never comes up and only a reset request can help). One JSON line per fact on stdout:
// {ffs: 'ready'|'event'|'io'|'wedged'|'unwedged'|'error', t, ...}, t the guest's CLOCK_MONOTONIC in ms.
process.env.UV_THREADPOOL_SIZE = '8'; // blocking ep0/ep1/ep2 calls each hold a libuv thread

import { existsSync, openSync, read, readFileSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const [mount = '/dev/ffs-wedge', nArg = '5', answersFile] = process.argv.slice(2);
const SIZE = 4096;
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const say = (o) => process.stdout.write(`${JSON.stringify({ ffs: o.ffs, t: mono(), ...o })}\n`);
const readP = promisify(read);
const writeP = promisify(write);

// <linux/usb/functionfs.h>: v2 descriptors head, full- and high-speed sets (dummy_hcd is high speed).
const MAGIC_V2 = 3;
const HAS_FS_DESC = 1;
const HAS_HS_DESC = 2;
const STRINGS_MAGIC = 2;
const EVENTS = ['BIND', 'UNBIND', 'ENABLE', 'DISABLE', 'SETUP', 'SUSPEND', 'RESUME'];
const EVENT_SIZE = 12; // struct usb_functionfs_event: 8-byte setup + type + 3 pad

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
function descriptorSet(maxPacket) {
  const intf = Buffer.from([9, 4, 0, 0, 2, 0xff, 0, 0, 1]); // interface 0, 2 endpoints, vendor class, iInterface 1
  // IN first: usb_ep_autoconfig takes dummy_udc's ep1in-bulk, then ep2out-bulk, the Loopback gadget's 0x81/0x02.
  const ep = (addr) => Buffer.from([7, 5, addr, 2, maxPacket & 0xff, maxPacket >> 8, 0]);
  return Buffer.concat([intf, ep(0x81), ep(0x02)]);
}
function descriptors() {
  const body = Buffer.concat([u32(3), u32(3), descriptorSet(64), descriptorSet(512)]);
  const head = Buffer.concat([u32(MAGIC_V2), u32(12 + body.length), u32(HAS_FS_DESC | HAS_HS_DESC)]);
  return Buffer.concat([head, body]);
}
function strings() {
  const lang = Buffer.concat([Buffer.from([0x09, 0x04]), Buffer.from('wedge\0', 'latin1')]);
  return Buffer.concat([u32(STRINGS_MAGIC), u32(16 + lang.length), u32(1), u32(1), lang]);
}

const ep0 = openSync(join(mount, 'ep0'), 'r+');
writeSync(ep0, descriptors());
writeSync(ep0, strings());
// The endpoint files exist once the descriptors are in, numbered in descriptor order: ep1 = IN, ep2 = OUT.
const epIn = openSync(join(mount, 'ep1'), 'r+');
const epOut = openSync(join(mount, 'ep2'), 'r+');

let limit = Number(nArg);
let enabled = false;
let wedged = false;
let count = 0;
let generation = 0; // bumped at every DISABLE/ENABLE: I/O begun before it is stale
let wake = () => {};
const changed = () => {
  const w = wake;
  wake = () => {};
  w();
};
const until = () => new Promise((r) => (wake = r));

function onEnable() {
  if (answersFile && existsSync(answersFile)) {
    const n = Number(readFileSync(answersFile, 'utf8').trim());
    if (Number.isFinite(n) && n >= 0) limit = n;
  }
  if (wedged) say({ ffs: 'unwedged', after: count });
  wedged = limit === 0;
  count = 0;
  enabled = true;
  if (wedged) say({ ffs: 'wedged', after: 0, limit });
}

async function events() {
  const buf = Buffer.alloc(EVENT_SIZE * 4);
  for (;;) {
    // In SETUP_PENDING state this read also answers a control request FunctionFS passed to us: it stalls an
    // IN request and acknowledges an OUT one; nothing the lab sends reaches the function that way.
    const { bytesRead } = await readP(ep0, buf, 0, buf.length, null);
    for (let off = 0; off + EVENT_SIZE <= bytesRead; off += EVENT_SIZE) {
      const type = EVENTS[buf[off + 8]] ?? `type${buf[off + 8]}`;
      say({ ffs: 'event', type });
      if (type === 'ENABLE') onEnable();
      if (type === 'DISABLE' || type === 'UNBIND') enabled = false;
      if (type === 'ENABLE' || type === 'DISABLE' || type === 'UNBIND') {
        generation++;
        changed();
      }
    }
  }
}

async function serve() {
  const data = Buffer.alloc(SIZE);
  for (;;) {
    if (!enabled || wedged) {
      await until();
      continue;
    }
    const gen = generation;
    try {
      const { bytesRead } = await readP(epOut, data, 0, SIZE, null);
      // Data that arrived is the host's transfer now, even when the read was queued before a DISABLE/ENABLE
      // (FunctionFS holds a read on a disabled endpoint until it is enabled): echo it, or the host's IN times
      // out on a device that is not wedged.
      if (wedged) continue;
      await writeP(epIn, data, 0, bytesRead, null);
      if (gen !== generation) continue;
      count++;
      say({ ffs: 'io', n: count });
      if (count >= limit) {
        wedged = true;
        say({ ffs: 'wedged', after: count, limit });
      }
    } catch (err) {
      // A reset or unplug ends the queued request (ESHUTDOWN, ECONNRESET): wait for the next ENABLE.
      if (gen === generation) {
        say({ ffs: 'error', code: err.code, message: err.message });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

say({ ffs: 'ready', limit, pid: process.pid });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
events().catch((err) => {
  say({ ffs: 'error', where: 'ep0', code: err.code, message: err.message });
  process.exit(1);
});
serve();
