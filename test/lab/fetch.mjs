// Fetches the guest's pieces from Debian's packages with `apt-get download`, extracts them with
// `dpkg-deb -x` into one root and runs depmod there. Cached by the resolved package versions: a second run
// with the same versions neither downloads nor extracts again.
// Run alone: node test/lab/fetch.mjs
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CACHE_DIR,
  ensureDir,
  exists,
  hash,
  LabPrerequisiteError,
  log,
  run,
  sh,
  which,
} from './lib/util.mjs';

/** What the guest needs beside the kernel: busybox for init/shell, udevd (and its libs), kmod, libudev for usb@2. */
const BASE_PACKAGES = ['busybox-static', 'udev', 'libudev1', 'libsystemd-shared', 'kmod', 'libkmod2'];
/** Provided by the host's copies (node needs the host's exact libc/libstdc++), never mixed in from debs. */
const HOST_LIBS = new Set(['libc6', 'libgcc-s1', 'libstdc++6']);

function aptCache(args) {
  return sh('apt-cache', args, { stdio: ['ignore', 'pipe', 'ignore'] });
}

/** Direct Depends/Pre-Depends of each package, in one apt-cache call (each call costs seconds). */
function depends(pkgs) {
  const out = aptCache([
    'depends',
    '--no-recommends',
    '--no-suggests',
    '--no-conflicts',
    '--no-breaks',
    '--no-replaces',
    '--no-enhances',
    ...pkgs,
  ]);
  return [...out.matchAll(/^\s+(?:Pre)?Depends: <?([a-z0-9][a-z0-9+.-]*)>?/gm)].map((m) => m[1]);
}

function currentKernelPackage() {
  // linux-image-amd64 is the metapackage pointing at the current 6.1 ABI (e.g. linux-image-6.1.0-56-amd64).
  const dep = depends(['linux-image-amd64']).find((d) => /^linux-image-\d.*-amd64$/.test(d));
  if (!dep) throw new LabPrerequisiteError('apt-cache knows no linux-image-amd64', 'run apt-get update');
  return dep;
}

/** The closure of library dependencies (lib* packages) of the base packages, minus those the host provides. */
function libraryClosure(roots) {
  const seen = new Set(roots);
  const queue = [...roots];
  while (queue.length) {
    for (const d of depends(queue.splice(0))) {
      if (!d.startsWith('lib') || HOST_LIBS.has(d) || seen.has(d)) continue;
      seen.add(d);
      queue.push(d);
    }
  }
  return [...seen];
}

function candidateVersions(pkgs) {
  const out = aptCache(['show', '--no-all-versions', ...pkgs]);
  const versions = {};
  for (const block of out.split(/\n\n+/)) {
    const name = block.match(/^Package: (.+)$/m)?.[1];
    const version = block.match(/^Version: (.+)$/m)?.[1];
    if (name && version) versions[name] = version;
  }
  const missing = pkgs.filter((p) => !versions[p]);
  if (missing.length)
    throw new LabPrerequisiteError(
      `apt-cache has no candidate for ${missing.join(', ')}`,
      'run apt-get update',
    );
  return versions;
}

/**
 * Resolving versions costs several apt-cache calls of seconds each; the answer only changes when the apt
 * lists do, so it is cached under a key made of the lists' names, sizes and mtimes.
 */
function resolvePackages(cacheDir) {
  const listsDir = '/var/lib/apt/lists';
  const lists = exists(listsDir)
    ? readdirSync(listsDir)
        .filter((f) => /_Packages(\.\w+)?$|Release$/.test(f))
        .map((f) => {
          const st = statSync(join(listsDir, f));
          return [f, st.size, st.mtimeMs];
        })
    : [];
  const file = join(ensureDir(cacheDir), `resolved-${hash(lists, BASE_PACKAGES)}.json`);
  if (lists.length && exists(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const kernelPkg = currentKernelPackage();
  const pkgs = [kernelPkg, ...libraryClosure(BASE_PACKAGES)];
  const resolved = { kernelPkg, pkgs, versions: candidateVersions(pkgs) };
  writeFileSync(file, JSON.stringify(resolved));
  return resolved;
}

async function ensureAptLists() {
  const lists = exists('/var/lib/apt/lists') ? readdirSync('/var/lib/apt/lists') : [];
  if (!lists.some((f) => /_Packages(\.\w+)?$/.test(f))) {
    log('apt lists empty: apt-get update');
    await run('apt-get', ['update', '-qq']);
  }
}

/**
 * Returns { key, root, kernelVersion, vmlinuz, packages } for a cached, extracted guest root.
 */
export async function fetchGuest({ cacheDir = CACHE_DIR } = {}) {
  for (const bin of ['apt-get', 'apt-cache', 'dpkg-deb', 'depmod']) {
    if (!which(bin))
      throw new LabPrerequisiteError(`${bin} not found`, 'install apt, dpkg and kmod (apt-get install kmod)');
  }
  await ensureAptLists();
  const { kernelPkg, pkgs, versions } = resolvePackages(cacheDir);
  const key = hash(Object.entries(versions).sort());
  const guestDir = join(cacheDir, `guest-${key}`);
  const root = join(guestDir, 'root');
  const manifestPath = join(guestDir, 'manifest.json');
  if (exists(manifestPath)) {
    log(`guest packages cached (${key})`);
    return { ...JSON.parse(readFileSync(manifestPath, 'utf8')), root };
  }

  const debDir = ensureDir(join(cacheDir, 'debs'));
  const have = new Set(readdirSync(debDir));
  // apt-get download names files with the epoch's colon escaped: busybox-static_1%3a1.35.0-..._amd64.deb
  const debName = (p) => `${p}_${versions[p].replace(':', '%3a')}_`;
  const toFetch = pkgs.filter((p) => ![...have].some((f) => f.startsWith(debName(p))));
  if (toFetch.length) {
    log(`apt-get download ${toFetch.length} packages`);
    // apt-get download as root warns that it is unsandboxed; harmless here.
    try {
      await run('apt-get', ['download', '-q', ...toFetch.map((p) => `${p}=${versions[p]}`)], { cwd: debDir });
    } catch (e) {
      // Offline or a mirror hiccup: a skip on a developer's machine, a failure under CI (run.mjs decides).
      throw new LabPrerequisiteError(`apt-get download failed: ${e.message.split('\n').slice(-3).join(' ')}`);
    }
  }
  const files = readdirSync(debDir);
  const tmpRoot = `${root}.tmp`;
  rmSync(tmpRoot, { recursive: true, force: true });
  ensureDir(tmpRoot);
  for (const p of pkgs) {
    const f = files.find((x) => x.startsWith(debName(p)) && x.endsWith('.deb'));
    if (!f) throw new Error(`download of ${p} left no .deb`);
    await run('dpkg-deb', ['-x', join(debDir, f), tmpRoot]);
  }
  const kernelVersion = kernelPkg.replace(/^linux-image-/, '');
  // The image ships without modules.dep (usb-lab.md).
  await run('depmod', ['-b', tmpRoot, kernelVersion]);
  rmSync(root, { recursive: true, force: true });
  renameSync(tmpRoot, root);
  const manifest = { key, kernelVersion, vmlinuz: `boot/vmlinuz-${kernelVersion}`, packages: versions };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  log(`guest packages extracted (${key}, kernel ${kernelVersion})`);
  return { ...manifest, root };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const g = await fetchGuest();
  console.log(JSON.stringify(g, null, 2));
}
