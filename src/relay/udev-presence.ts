/**
 * Is a real udevd at work in this network namespace, and does libudev think one is?
 *
 * libudev/sd-device `device_monitor_new_full` refuses to join group 2 ("The udev service seems not to be
 * active, disabling the monitor") when `access("/run/udev/control", F_OK) < 0` and /dev is not a devtmpfs.
 * So the relay makes sure the path exists. But a live udevd already broadcasting here would make every
 * event arrive twice, so the relay must tell a live udevd in *this* netns from a control socket
 * bind-mounted from the host (`-v /run/udev:/run/udev:ro`), whose udevd broadcasts only in the host netns.
 * /proc/net/unix lists the unix sockets of the reader's network namespace only (net/unix/af_unix.c
 * `unix_seq_show` walks the netns's table), so a listening socket there with the control path is udevd here.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type ControlState =
  /** Nothing at <run>/udev/control: libudev monitors stay off until someone creates it. */
  | { kind: 'missing' }
  /** A plain file (ours from an earlier run, or a user's): enough for libudev, no udevd. */
  | { kind: 'file' }
  /** A unix socket listened on in this network namespace: a live udevd here. */
  | { kind: 'udevd-here' }
  /** A unix socket not listened on in this netns: the host's udevd (bind-mounted /run/udev) or a stale one. */
  | { kind: 'foreign-socket' };

/** Paths of listening unix sockets in /proc/net/unix (Flags has __SO_ACCEPTCON, 0x10000). */
export function listeningUnixPaths(procNetUnix: string): Set<string> {
  const paths = new Set<string>();
  for (const line of procNetUnix.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const flags = Number.parseInt(fields[3] ?? '0', 16);
    if ((flags & 0x10000) !== 0) paths.add(fields.slice(7).join(' '));
  }
  return paths;
}

export async function inspectUdevControl(runRoot = '/run', procRoot = '/proc'): Promise<ControlState> {
  const control = join(runRoot, 'udev', 'control');
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(control);
  } catch {
    return { kind: 'missing' };
  }
  if (!st.isSocket()) return { kind: 'file' };
  let table = '';
  try {
    table = await readFile(join(procRoot, 'net', 'unix'), 'utf8');
  } catch {
    // No /proc/net/unix: assume the worst (a live udevd), the user can --force.
    return { kind: 'udevd-here' };
  }
  // udevd binds "/run/udev/control"; the table shows the path as bound, whatever our runRoot is.
  const listening = listeningUnixPaths(table);
  return listening.has('/run/udev/control') || listening.has(control)
    ? { kind: 'udevd-here' }
    : { kind: 'foreign-socket' };
}
