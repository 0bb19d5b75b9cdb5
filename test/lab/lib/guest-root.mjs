// Paths inside an extracted guest root (the debs unpacked by fetch.mjs). A symlink in there means what it
// would mean in the guest: an absolute target is relative to the guest's root, never the host's. Following
// it with the host's fs calls reads the host's file instead (Debian's udev ships
// lib/systemd/systemd-udevd -> /bin/udevadm: without the `udev` package on the host that was ENOENT, with
// it the host's binary went into the guest).
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Merged /usr, as in Debian's guest and in the initramfs: /bin is usr/bin, and so on. */
const MERGED = { bin: 'usr/bin', sbin: 'usr/sbin', lib: 'usr/lib', lib64: 'usr/lib64' };

/**
 * The host path of `rel` resolved inside `root`: every symlink on the way is followed within the root
 * (absolute targets from the root, relative ones from their directory; `..` stops at the root). A path under
 * /bin, /sbin, /lib or /lib64 that is not there is tried under usr/ (merged /usr). Throws, naming the guest
 * path, when it is not in the root at all.
 */
export function resolveInRoot(root, rel, { maxLinks = 40 } = {}) {
  let parts = splitPath(rel);
  const done = [];
  let links = 0;
  while (parts.length) {
    const name = parts.shift();
    if (name === '..') {
      done.pop();
      continue;
    }
    const cur = join(root, ...done, name);
    let st;
    try {
      st = lstatSync(cur);
    } catch {
      const alt = mergedAlternative([...done, name]);
      if (alt) {
        done.length = 0;
        parts = [...alt, ...parts];
        continue;
      }
      throw new Error(`not in the guest root: /${[...done, name, ...parts].join('/')} (under ${root})`);
    }
    if (!st.isSymbolicLink()) {
      done.push(name);
      continue;
    }
    if (++links > maxLinks) throw new Error(`too many symlinks resolving /${rel} in ${root}`);
    const target = readlinkSync(cur);
    if (target.startsWith('/')) done.length = 0;
    parts = [...splitPath(target), ...parts];
  }
  return join(root, ...done);
}

function splitPath(p) {
  return p.split('/').filter((s) => s && s !== '.');
}

/** `bin/udevadm` → `usr/bin/udevadm` when the first is missing (a root that is merged-/usr already). */
function mergedAlternative(parts) {
  const [first, ...rest] = parts;
  return MERGED[first] ? [...splitPath(MERGED[first]), ...rest] : undefined;
}
