// Real OCI containers in the guest (issue 16): runc starts them from the specs the Docker engine generated
// (/lab/oci/<recipe>.json, made by test/lab/oci/generate.mjs), with the placeholders of test/lab/oci/README.md
// filled in for this VM. One container per name: a holder process (`sleep`) is the container's init, every
// lab process in it is a `runc exec`, so they share its namespaces, cgroup, capabilities, seccomp and user
// exactly as processes in one Docker container do.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

const BUNDLES = '/var/lab/oci';
/** Named volumes (`-v NAME:/path`): one directory per name, shared by every container that mounts it. */
const VOLUMES = '/var/lab/volumes';

function sh(cmd) {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

const major = (rdev) => Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
const minor = (rdev) => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

/** --privileged: Docker lists every device node of the host (minus /dev/pts, /dev/shm); here, the guest's. */
function hostDevices(dir = '/dev') {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === '/dev/pts' || p === '/dev/shm' || p === '/dev/mqueue' || p === '/dev/console') continue;
    let st;
    try {
      st = statSync(p, { throwIfNoEntry: false });
    } catch {
      continue;
    }
    if (!st) continue;
    if (st.isDirectory()) out.push(...hostDevices(p));
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      out.push({
        path: p,
        type: st.isCharacterDevice() ? 'c' : 'b',
        major: major(st.rdev),
        minor: minor(st.rdev),
        fileMode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
      });
    }
  }
  return out;
}

/**
 * The recipe's spec for container `name` in bundle `dir`. `device` ({ bus, devnum }) points --device at
 * the node of a plugged device (the fixture's stand-in is 001/002); `peers` maps recipe names to running
 * containers' pids for `--network container:APP`.
 */
export function fillSpec(spec, { name, dir, device, peers = {}, cmd }) {
  const strings = (v, f) =>
    typeof v === 'string'
      ? f(v)
      : Array.isArray(v)
        ? v.map((x) => strings(x, f))
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strings(x, f)]))
          : v;
  const s = strings(spec, (v) =>
    v
      .replaceAll('{{CONTAINER_DIR}}', dir)
      .replaceAll('{{ID}}', name)
      .replaceAll('{{HOSTNAME}}', name)
      .replaceAll('{{HOST_NETNS}}', '/proc/1/ns/net')
      .replaceAll('{{VOLUMES}}', VOLUMES)
      .replace(/\{\{NETNS:([\w-]+)\}\}/g, (_, r) => `/proc/${peerPid(peers, r)}/ns/net`)
      .replace(/\{\{(CONTAINER_DIR|HOSTNAME|ID):([\w-]+)\}\}/g, (_, k, r) =>
        k === 'CONTAINER_DIR' ? join(BUNDLES, peers[r].name) : peers[r].name,
      ),
  );
  s.root = { path: join(dir, 'rootfs'), readonly: false };
  if (s.linux.devices === '{{HOST_DEVICES}}') s.linux.devices = hostDevices();
  if (device) retargetDevice(s, device);
  s.process.args = cmd;
  s.process.terminal = false;
  // A writable /tmp for a non-root user (the compose file's `tmpfs: [/tmp]`); root writes the guest's.
  if (s.process.user.uid !== 0)
    s.mounts.push({
      destination: '/tmp',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'mode=1777'],
    });
  return s;
}

function peerPid(peers, recipe) {
  const p = peers[recipe];
  if (!p)
    throw new Error(
      `the spec joins container ${recipe}'s network: start a container with recipe ${recipe} first`,
    );
  return p.pid;
}

/** --device /dev/bus/usb/001/002 in the fixture → the node of the device the scenario plugged. */
function retargetDevice(s, { bus, devnum }) {
  const path = `/dev/bus/usb/${String(bus).padStart(3, '0')}/${String(devnum).padStart(3, '0')}`;
  const min = (bus - 1) * 128 + (devnum - 1);
  for (const d of s.linux.devices ?? []) if (d.major === 189) Object.assign(d, { path, minor: min });
  for (const r of s.linux.resources.devices) if (r.allow && r.major === 189 && r.minor >= 0) r.minor = min;
}

/** Writes the bundle and starts its holder with `runc run --detach`; resolves the container's init pid. */
export function startContainer({ name, recipe, device, peers, net }) {
  const dir = join(BUNDLES, name);
  sh(`runc delete -f ${name} 2>/dev/null; umount ${dir}/rootfs 2>/dev/null; rm -rf ${dir}; true`);
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  // The guest's own root as the image: node, the project, the lab's scripts are all there. Not recursive:
  // /proc, /sys, /dev, /run and /tmp come from the spec's mounts, as in any container.
  sh(`mount --bind / ${dir}/rootfs`);
  // Docker's per-container files (the fixture's {{CONTAINER_DIR}}); bind sources a host would have.
  writeFileSync(join(dir, 'hostname'), `${name}\n`);
  writeFileSync(join(dir, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\t${name}\n`);
  writeFileSync(join(dir, 'resolv.conf'), '');
  mkdirSync('/run/udev', { recursive: true }); // docker -v creates a missing bind source too
  const spec = JSON.parse(readFileSync(`/lab/oci/${recipe}.json`, 'utf8'));
  const filled = fillSpec(spec, { name, dir, device, peers, cmd: ['sleep', '2147483647'] });
  for (const m of filled.mounts) {
    if (m.type !== 'bind') continue;
    if (m.source.startsWith(`${VOLUMES}/`)) mkdirSync(m.source, { recursive: true });
    // Bind targets, made by the guest's root now as Docker makes them in the container's layer: runc would
    // make them as the container's root, which in a user namespace may not write the (shared) guest root.
    const target = join(dir, 'rootfs', m.destination);
    if (!existsSync(target)) {
      if (statSync(m.source).isDirectory()) mkdirSync(target, { recursive: true });
      else {
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, '');
      }
    }
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(filled, null, 2));
  // --no-pivot: the guest's root is the initramfs, where pivot_root is impossible; dockerd does the same
  // there (DOCKER_RAMDISK). Everything else is the spec.
  // The container's init inherits runc's stdio: a pipe here would stay open as long as the container runs.
  const errFile = join(dir, 'runc.err');
  const errFd = openSync(errFile, 'w');
  const r = spawnSync('runc', ['run', '--detach', '--no-pivot', '--bundle', dir, name], {
    stdio: ['ignore', 'ignore', errFd],
    timeout: 60000,
  });
  closeSync(errFd);
  if (r.status !== 0)
    throw new Error(
      `runc run ${name} (${recipe}): ${readFileSync(errFile, 'utf8').trim() || r.error || r.signal}`,
    );
  const pid = JSON.parse(sh(`runc state ${name}`)).pid;
  // What libnetwork's prestart hook would do (a network of its own: a veth pair, as a bridge network has) for --network none/container: lo up (a fresh netns has it down).
  sh(`nsenter -t ${pid} -n ip link set lo up`);
  if (net) sh(`nsenter -t ${pid} -n env LAB_NET=${Number(net)} sh /lab/guest/veth.sh`);
  return { name, recipe, pid, spec: filled };
}

/** argv that runs `argv` inside container `name` with the spec's user, capabilities and seccomp. */
export function execArgv(name, argv, env = {}) {
  return ['runc', 'exec', ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), name, ...argv];
}

export function stopContainer(name) {
  sh(`runc delete -f ${name} 2>/dev/null; umount ${join(BUNDLES, name)}/rootfs 2>/dev/null; true`);
}
