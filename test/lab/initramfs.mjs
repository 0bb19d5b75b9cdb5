// Builds the guest's initramfs as two concatenated newc archives (the kernel unpacks them in order):
//   base-<hash>.cpio     busybox, kernel modules, systemd-udevd + libs, node + libs, the libusb control's
//                        node_modules: large and stable, rebuilt only when those inputs change;
//   project-<hash>.cpio  the replug project (package.json, dist/, production node_modules) and the lab's guest
//                        scripts: small, rebuilt whenever the project changes.
// Run alone: node test/lab/initramfs.mjs (after `npm run build`).
import { lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fetchGuest } from './fetch.mjs';
import { CpioWriter } from './lib/cpio.mjs';
import { resolveInRoot } from './lib/guest-root.mjs';
import {
  CACHE_DIR,
  ensureDir,
  exists,
  hash,
  IS_CI,
  LAB_DIR,
  LabPrerequisiteError,
  log,
  REPO_DIR,
  run,
  sh,
  which,
} from './lib/util.mjs';

/** Modules the lab loads at boot, in this order, each with its dependencies first (modprobe --show-depends). */
export const MODULES = [
  'xhci_pci', // xhci_hcd + usbcore: QEMU's qemu-xhci controller
  'usb_storage', // usb-storage devices bind (sd_mod is not needed to see them)
  'ftdi_sio', // usbserial + the FTDI driver for QEMU's usb-serial (0403:6001)
  'configfs',
  'libcomposite',
  'usb_f_ss_lb', // the Loopback/SourceSink function
  'usb_f_fs', // FunctionFS: the heal scenario's wedging device (guest/ffs-wedge.mjs)
  'dummy_hcd', // the gadget's virtual UDC + host controller
  'veth', // a veth pair between the guest's root and the container netns, if a scenario wants TCP
];

/** The libusb control's dependency (usb v2 = libusb, the seed's path) under an npm alias, lab-only. */
export const CONTROL_PACKAGE = 'usb-libusb@npm:usb@2.18.0';

const MERGED = [
  ['bin', 'usr/bin'],
  ['sbin', 'usr/sbin'],
  ['lib', 'usr/lib'],
  ['lib64', 'usr/lib64'],
];
/** Debian is merged-/usr: put everything under usr/ and make /bin, /lib... symlinks, as on the host. */
function guestPath(p) {
  const rel = p.replace(/^\/+/, '');
  for (const [from, to] of MERGED)
    if (rel === from || rel.startsWith(`${from}/`)) return to + rel.slice(from.length);
  return rel;
}

/**
 * [host path, initramfs path] of the guest's own binaries, resolved inside the extracted root: Debian's
 * lib/systemd/systemd-udevd is a symlink to /bin/udevadm, which means the guest's udevadm, not the host's.
 */
export function guestBinaries(root) {
  return [
    [resolveInRoot(root, 'lib/systemd/systemd-udevd'), 'usr/lib/systemd/systemd-udevd'],
    [resolveInRoot(root, 'bin/udevadm'), 'usr/bin/udevadm'],
  ];
}

/** The host's runc (Debian's `runc`): a Go binary plus libseccomp, so it goes into the guest as node does. */
export function runcPath() {
  const p = which('runc');
  if (!p)
    throw new LabPrerequisiteError(
      'runc not found (the lab runs its containers with it)',
      'apt-get install runc',
    );
  return p;
}

async function moduleFiles(root, kernelVersion) {
  const files = [];
  for (const m of MODULES) {
    const { stdout } = await run('modprobe', ['-d', root, '-S', kernelVersion, '--show-depends', m]);
    for (const line of stdout.split('\n')) {
      const path = line.match(/^insmod (\S+)/)?.[1];
      if (path && !files.includes(path)) files.push(path);
    }
  }
  return files;
}

/** ldd's answer for a binary, resolving first inside the extracted debs, then on the host. */
function sharedLibs(binary, libPath) {
  const out = sh('ldd', [binary], { env: { ...process.env, LD_LIBRARY_PATH: libPath } });
  const libs = [];
  for (const line of out.split('\n')) {
    if (line.includes('not found')) throw new Error(`${binary}: ${line.trim()}`);
    const m = line.match(/=> (\/\S+)/) ?? line.match(/^\s*(\/\S+) \(/);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function walk(dir, onFile) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue; // removed meanwhile (another npm install running in the same tree)
    }
    if (st.isDirectory()) walk(p, onFile);
    else onFile(p, st);
  }
}

function addTree(cpio, hostDir, guestDir, { skip = () => false } = {}) {
  if (!exists(hostDir)) return;
  cpio.dir(guestDir);
  walk(hostDir, (p, st) => {
    const rel = relative(hostDir, p);
    if (skip(rel)) return;
    const name = `${guestDir}/${rel}`;
    if (st.isSymbolicLink()) cpio.symlink(name, readlinkSync(p));
    else if (st.isFile()) cpio.fileFrom(name, p, st.mode & 0o777);
  });
}

/** A cheap fingerprint of a tree: paths, sizes and mtimes. */
function treeStamp(dir) {
  const entries = [];
  if (exists(dir)) walk(dir, (p, st) => entries.push([relative(dir, p), st.size, Math.floor(st.mtimeMs)]));
  return entries;
}

/** A content fingerprint, for small trees that tools rewrite unchanged (tsc touches every file in dist/). */
function treeHash(dir) {
  const entries = [];
  if (exists(dir))
    walk(dir, (p, st) => st.isFile() && entries.push([relative(dir, p), hash(readFileSync(p))]));
  return hash(entries);
}

export async function ensureControlDeps(cacheDir = CACHE_DIR) {
  const dir = ensureDir(join(cacheDir, 'control'));
  const marker = join(dir, 'node_modules', 'usb-libusb', 'package.json');
  if (!exists(marker)) {
    log(`npm install ${CONTROL_PACKAGE} (lab control, into the cache)`);
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', dir, CONTROL_PACKAGE]);
  }
  return join(dir, 'node_modules');
}

async function buildBase(guest, controlModules, out) {
  const cpio = new CpioWriter(`${out}.tmp`);
  for (const d of [
    'usr/bin',
    'usr/sbin',
    'usr/lib',
    'usr/lib64',
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'etc',
    'root',
    'var/lab',
    'mnt',
  ])
    cpio.dir(d);
  for (const [from, to] of MERGED) cpio.symlink(from, to);
  cpio.charDev('dev/console', 5, 1); // without it init has no console (usb-lab.md)
  cpio.charDev('dev/null', 1, 3, 0o666);
  cpio.fileFrom('usr/bin/busybox', resolveInRoot(guest.root, 'bin/busybox'), 0o755);
  cpio.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  cpio.file('etc/group', 'root:x:0:\n');

  const mods = await moduleFiles(guest.root, guest.kernelVersion);
  const order = [];
  for (const m of mods) {
    const name = `lab/modules/${m.split('/').pop()}`;
    cpio.fileFrom(name, m);
    order.push(`/${name}`);
  }
  cpio.file('lab/modules.order', `${order.join('\n')}\n`);

  const libDirs = [
    'lib/x86_64-linux-gnu',
    'usr/lib/x86_64-linux-gnu',
    'lib/systemd',
    'usr/lib/x86_64-linux-gnu/systemd',
  ];
  const libPath = libDirs.map((d) => join(guest.root, d)).join(':');
  // runc (with the libseccomp ldd finds) runs the lab's containers from Docker's specs (guest/oci.mjs).
  const binaries = [
    ...guestBinaries(guest.root),
    [process.execPath, 'usr/bin/node'],
    [runcPath(), 'usr/sbin/runc'],
  ];
  for (const [host, name] of binaries) cpio.fileFrom(name, host, 0o755);
  // Native addons (usb v2 needs libudev.so.1, usb v3 librt) load their libraries from the same dirs.
  const addons = [];
  for (const dir of [controlModules, join(REPO_DIR, 'node_modules')]) {
    walk(dir, (p) => {
      if (p.endsWith('.node') && /linux-x64/.test(p) && !/musl/.test(p)) addons.push(p);
    });
  }
  const libs = new Map();
  for (const host of [...binaries.map(([h]) => h), ...addons]) {
    for (const lib of sharedLibs(host, libPath)) {
      const inRoot = lib.startsWith(`${guest.root}/`);
      const g = inRoot ? guestPath(relative(guest.root, lib)) : guestPath(lib);
      libs.set(g, inRoot ? resolveInRoot(guest.root, relative(guest.root, lib)) : lib);
    }
  }
  for (const [name, host] of [...libs].sort()) cpio.fileFrom(name, host, 0o755);
  // ld.so is found through its absolute path; the x86_64 triplet dir is on the default search path.
  addTree(cpio, join(guest.root, 'lib/udev/rules.d'), 'usr/lib/udev/rules.d');
  addTree(cpio, controlModules, 'lab/control/node_modules');
  cpio.close();
  renameSync(`${out}.tmp`, out);
}

function prodModuleDirs() {
  // `npm ls --omit=dev` lists the production dependency tree; only those go into the guest.
  let out = '';
  try {
    out = sh('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (e) {
    out = e.stdout ?? ''; // npm ls exits non-zero on extraneous packages; the list is still right
  }
  return out
    .split('\n')
    .filter((p) => p.includes('/node_modules/'))
    .map((p) => relative(REPO_DIR, p))
    .sort();
}

function buildProject(dirs, out) {
  const cpio = new CpioWriter(`${out}.tmp`);
  cpio.fileFrom('replug/package.json', join(REPO_DIR, 'package.json'));
  addTree(cpio, join(REPO_DIR, 'dist'), 'replug/dist');
  // The payload schemas (package.json ships docs/): `replug watch` validates against them and rejects every
  // message without them. The example session drivers, so agent scenarios run them where `usb` resolves.
  addTree(cpio, join(REPO_DIR, 'docs', 'schemas'), 'replug/docs/schemas');
  addTree(cpio, join(REPO_DIR, 'examples', 'drivers'), 'replug/examples/drivers');
  for (const d of dirs)
    addTree(cpio, join(REPO_DIR, d), `replug/${d}`, { skip: (rel) => rel.startsWith('node_modules/') });
  addTree(cpio, join(LAB_DIR, 'guest'), 'lab/guest');
  for (const f of readdirSync(join(LAB_DIR, 'oci')).filter((f) => f.endsWith('.json')))
    cpio.fileFrom(`lab/oci/${f}`, join(LAB_DIR, 'oci', f));
  for (const f of readdirSync(join(LAB_DIR, 'control')).filter((f) => f.endsWith('.mjs')))
    cpio.fileFrom(`lab/control/${f}`, join(LAB_DIR, 'control', f));
  cpio.fileFrom('init', join(LAB_DIR, 'guest', 'init.sh'), 0o755);
  cpio.close();
  renameSync(`${out}.tmp`, out);
}

/** Returns { kernel, initrd: [base, project], guest } — everything vm.mjs needs to boot. */
export async function buildInitramfs({ cacheDir = CACHE_DIR, build = true } = {}) {
  const guest = await fetchGuest({ cacheDir });
  if (build) {
    log('npm run build');
    const r = await run('npm', ['run', 'build'], { cwd: REPO_DIR, check: false });
    if (r.code !== 0) {
      const msg = `npm run build failed:\n${(r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n')}`;
      // Under CI a broken build fails the lab; while others are mid-change locally, the last dist/ will do.
      if (IS_CI || !exists(join(REPO_DIR, 'dist'))) throw new Error(msg);
      log(`WARNING ${msg}\n  -> using the existing dist/`);
    }
  }
  const controlModules = await ensureControlDeps(cacheDir);
  const outDir = ensureDir(join(cacheDir, 'initramfs'));
  const baseKey = hash(
    guest.key,
    MODULES,
    process.execPath,
    process.version,
    runcPath(),
    statSync(runcPath()).size,
    statSync(process.execPath).size,
    treeStamp(controlModules),
    readFileSync(new URL(import.meta.url)),
    readFileSync(new URL('./lib/cpio.mjs', import.meta.url)),
  );
  const base = join(outDir, `base-${baseKey}.cpio`);
  if (!exists(base)) {
    log('building initramfs base (kernel modules, udevd, node, control deps)');
    await buildBase(guest, controlModules, base);
  }
  const dirs = prodModuleDirs();
  const projectKey = hash(
    baseKey,
    dirs,
    treeHash(join(REPO_DIR, 'dist')),
    treeHash(join(REPO_DIR, 'docs', 'schemas')),
    treeHash(join(REPO_DIR, 'examples', 'drivers')),
    readFileSync(join(REPO_DIR, 'package.json')),
    treeHash(join(LAB_DIR, 'guest')),
    treeHash(join(LAB_DIR, 'oci')),
    treeHash(join(LAB_DIR, 'control')),
    dirs.map((d) => statSync(join(REPO_DIR, d)).mtimeMs),
  );
  const project = join(outDir, `project-${projectKey}.cpio`);
  if (!exists(project)) {
    log('building initramfs project part (dist, production node_modules, guest scripts)');
    buildProject(dirs, project);
  }
  return { kernel: join(guest.root, guest.vmlinuz), initrd: [base, project], guest };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await buildInitramfs();
  for (const f of r.initrd) log(f, `${(statSync(f).size / 1e6).toFixed(1)} MB`);
}
