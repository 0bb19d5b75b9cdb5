// inotify on /dev/bus/usb, the way the original .NET tool and replug's devfs source see devices: the node
// appears when the kernel creates it, before udev runs. Prints one JSON line per node added or removed.
import { existsSync, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? '/dev/bus/usb';
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ t: mono(), ...o })}\n`);
const watched = new Map();

function watchDir(dir) {
  if (watched.has(dir) || !existsSync(dir)) return;
  const w = watch(dir, (_type, name) => {
    if (!name) return;
    const p = join(dir, name);
    const present = existsSync(p);
    if (dir === root) {
      if (present) watchDir(p);
      return;
    }
    out({ type: present ? 'add' : 'remove', path: p });
  });
  w.on('error', () => {
    w.close();
    watched.delete(dir);
  });
  watched.set(dir, w);
}

watchDir(root);
for (const bus of readdirSync(root)) watchDir(join(root, bus));
out({ type: 'ready', buses: readdirSync(root) });
