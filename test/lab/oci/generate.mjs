// Makes test/lab/oci/<recipe>.json: the OCI runtime spec (config.json) the real Docker engine hands its
// runtime for each recipe in recipes.mjs. A dockerd of our own gets an extra runtime, `capture`, a script that
// copies the bundle's config.json and then execs runc, so even `--privileged` (which runc cannot start in
// this sandbox: its bounding set lacks CAP_SYS_RESOURCE) is captured exactly as Docker asks for it. The
// host-specific parts are replaced by the placeholders README.md lists; the lab fills them in the guest.
//
//   node test/lab/oci/generate.mjs            # regenerate and show what differs from the fixtures
//   node test/lab/oci/generate.mjs --write    # and overwrite them
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { importDir, startDockerd } from '../lib/dockerd.mjs';
import { sh } from '../lib/util.mjs';
import { RECIPES } from './recipes.mjs';

export const OCI_DIR = dirname(fileURLToPath(import.meta.url));
const IMAGE = 'replug-oci-capture:local';

/** A rootfs with /bin/sleep and its libraries: enough for a container that runs (the sidecar needs one). */
function sleepRootfs(dir) {
  const files = [sh('sh', ['-c', 'command -v sleep']).trim()];
  for (const line of sh('ldd', [files[0]]).split('\n')) {
    const m = line.match(/=> (\/\S+)/) ?? line.match(/^\s*(\/\S+) \(/);
    if (m) files.push(m[1]);
  }
  for (const f of files) {
    mkdirSync(join(dir, dirname(f)), { recursive: true });
    execFileSync('cp', ['-L', f, join(dir, f)]);
  }
  return dir;
}

function captureRuntime(outDir) {
  const script = `${outDir}-runtime`;
  writeFileSync(
    script,
    `#!/bin/sh
# containerd's shim calls: runc [global flags] create --bundle DIR [flags] ID
prev=; bundle=
for a in "$@"; do
  if [ "$prev" = --bundle ] || [ "$prev" = -b ]; then bundle=$a; fi
  prev=$a
done
case " $* " in *" create "*) [ -n "$bundle" ] && cp "$bundle/config.json" "${outDir}/$(basename "$bundle").json";; esac
exec runc "$@"
`,
  );
  chmodSync(script, 0o755);
  return script;
}

/** Replaces what belongs to this host and this container (README.md's table) with placeholders. */
export function normalize(spec, { id, containerDir, tmp, execRoot, dataRoot, others = [] }) {
  const s = structuredClone(spec);
  s.root.path = 'rootfs';
  // libnetwork's prestart hook calls back into this dockerd (its path and pid): the lab wires networks itself.
  delete s.hooks;
  if (s.linux?.devices && spec.process?.capabilities?.bounding?.length > 30) {
    // --privileged: every device node of the host. In the guest it is every node of the guest.
    s.linux.devices = '{{HOST_DEVICES}}';
  }
  const subst = [
    [containerDir, '{{CONTAINER_DIR}}'],
    [`${tmp}/usb`, '/dev/bus/usb'],
    [`${dataRoot}/volumes`, '{{VOLUMES}}'],
    [`${tmp}/udev`, '/run/udev'],
    [id, '{{ID}}'],
    [id.slice(0, 12), '{{HOSTNAME}}'],
    // --network host: the daemon's handle on its own netns.
    [`${execRoot}/netns/default`, '{{HOST_NETNS}}'],
    // Another container's (the sidecar's --network container:APP): its netns, files and hostname.
    ...others.flatMap((o) => [
      [o.netns, `{{NETNS:${o.name}}}`],
      [o.containerDir, `{{CONTAINER_DIR:${o.name}}}`],
      [o.id, `{{ID:${o.name}}}`],
      [o.id.slice(0, 12), `{{HOSTNAME:${o.name}}}`],
    ]),
  ];
  const walk = (v) => {
    if (typeof v === 'string') {
      let out = v;
      for (const [from, to] of subst) out = out.split(from).join(to);
      return out;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(s);
}

function recipeArgs(recipe, tmp, names) {
  return recipe.docker.map((a) =>
    a
      .replace('{{USB}}', `${tmp}/usb`)
      .replace('{{UDEV}}', `${tmp}/udev`)
      .replace('{{NODE}}', `${tmp}/usbnode`)
      .replace('{{APP}}', names.app),
  );
}

/** Runs every recipe against a fresh dockerd (one per distinct `daemon` option set); resolves { name: spec }. */
export async function generateSpecs({ log = () => {} } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'replug-oci-'));
  mkdirSync(join(tmp, 'usb'));
  mkdirSync(join(tmp, 'udev'));
  // A stand-in for /dev/bus/usb/001/002: usb_device major 189, minor (bus-1)*128 + (dev-1).
  execFileSync('mknod', [join(tmp, 'usbnode'), 'c', '189', '1']);
  sleepRootfs(join(tmp, 'rootfs'));
  const groups = new Map();
  for (const r of RECIPES) {
    const key = (r.daemon ?? []).join(' ');
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const specs = {};
  try {
    let n = 0;
    for (const [key, recipes] of groups)
      Object.assign(specs, await captureWith(tmp, `oci-capture${n++ ? `-${n}` : ''}`, key, recipes, log));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Recipes' order, whatever the daemons' order.
  return Object.fromEntries(RECIPES.map((r) => [r.name, specs[r.name]]));
}

async function captureWith(tmp, name, daemonArgs, recipes, log) {
  const captured = join(tmp, `captured-${name}`);
  mkdirSync(captured);
  const d = await startDockerd({
    name,
    runtimes: { capture: captureRuntime(captured) },
    args: daemonArgs ? daemonArgs.split(' ') : [],
    logFile: join(tmp, `dockerd-${name}.log`),
  });
  const specs = {};
  const names = {};
  try {
    // --userns-remap keeps images, containers and volumes under <data-root>/<uid>.<gid>.
    const root = (await d.docker(['info', '--format', '{{.DockerRootDir}}'])).stdout.trim();
    await importDir(d, join(tmp, 'rootfs'), IMAGE);
    const others = [];
    for (const recipe of recipes) {
      const cname = `replug-oci-${recipe.name}`;
      names[recipe.name] = cname;
      await d.docker(['rm', '-f', cname], { check: false });
      const args = ['run', '-d', '--runtime', 'capture', '--name', cname, ...recipeArgs(recipe, tmp, names)];
      const r = await d.docker([...args, IMAGE, 'sleep', '600'], { check: false });
      const id = (await d.docker(['inspect', '-f', '{{.Id}}', cname])).stdout.trim();
      log(
        `${recipe.name}: docker run ${r.code === 0 ? 'ran' : `failed (${r.stderr.trim().split('\n').pop()})`}`,
      );
      const spec = JSON.parse(readFileSync(join(captured, `${id}.json`), 'utf8'));
      const containerDir = join(root, 'containers', id);
      specs[recipe.name] = normalize(spec, {
        id,
        containerDir,
        tmp,
        execRoot: d.execRoot,
        dataRoot: root,
        others,
      });
      if (recipe.keepRunning) {
        const pid = (await d.docker(['inspect', '-f', '{{.State.Pid}}', cname])).stdout.trim();
        others.push({ name: recipe.name, id, containerDir, netns: `/proc/${pid}/ns/net` });
      }
    }
    for (const cname of Object.values(names)) await d.docker(['rm', '-f', cname], { check: false });
    await d.docker(['volume', 'rm', '-f', 'replug-udev'], { check: false });
    await d.docker(['rmi', IMAGE], { check: false });
  } finally {
    await d.stop();
  }
  return specs;
}

export const fixturePath = (name) => join(OCI_DIR, `${name}.json`);
export const serialize = (spec) => `${JSON.stringify(spec, null, 2)}\n`;

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const specs = await generateSpecs({ log: (m) => console.error(m) });
  let differ = 0;
  for (const [name, spec] of Object.entries(specs)) {
    let old;
    try {
      old = JSON.parse(readFileSync(fixturePath(name), 'utf8'));
    } catch {}
    if (!isDeepStrictEqual(old, spec)) {
      differ++;
      console.error(`${name}.json ${old ? 'differs' : 'is new'}`);
    }
    if (process.argv.includes('--write')) writeFileSync(fixturePath(name), serialize(spec));
  }
  console.error(
    `${differ} of ${Object.keys(specs).length} fixtures differ${process.argv.includes('--write') ? ' (written)' : ''}`,
  );
}
