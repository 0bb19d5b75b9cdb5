// Streams raw NETLINK_KOBJECT_UEVENT datagrams as JSON lines, one per datagram, in arrival order:
// { t, group, port, hex } (group = the sender's destination group mask: 1 = kernel, 2 = udev; port = the
// sender's netlink port id, 0 for the kernel). The same record as test/fixtures/uevent/capture.mjs, streamed
// over the lab's console so the host can save a capture as a fixture. Usage: node capture-uevents.mjs [1,2]
import { createRequire } from 'node:module';

// The project's node_modules are under /replug in the guest, not beside this file.
const { RawNetlinkSocket } = createRequire('/replug/package.json')('netlink');
const groups = (process.argv[2] ?? '1,2').split(',').map(Number);
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const NETLINK_KOBJECT_UEVENT = 15;
const socket = new RawNetlinkSocket(NETLINK_KOBJECT_UEVENT, {});
for (const g of groups) socket.addMembership(g);
socket.on('message', (msg, rinfo) =>
  out({ group: rinfo.groups, port: rinfo.port, hex: msg.toString('hex') }),
);
out({ type: 'ready', groups });
process.on('SIGTERM', () => {
  socket.close();
  process.exit(0);
});
