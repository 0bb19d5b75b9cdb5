// `npm run test:docker`: the image is built by the real engine and runs (issue 16). With a dockerd of its
// own (no bridge here, so containers use --network host or none):
//   1. the NODE_IMAGE base is built locally (debootstrap --variant=minbase bookworm + this machine's Node,
//      as docs/deploy.md describes for a machine without a registry), cached as a tarball;
//   2. `docker build` of the Dockerfile with that base (legacy builder: BuildKit would fetch the
//      `# syntax=` frontend from a registry);
//   3. `replug doctor --json` inside reports the Docker runtime;
//   4. the agent publishes to a Mosquitto on the host (--network host: there is no bridge to publish a port
//      through here), and its HEALTHCHECK turns healthy with health.json written;
//   5. the image's user (10001, group plugdev) opens a USB node given root:plugdev 0660 (the udev rule) with
//      the cgroup rule `c 189:* rmw`; without the rule, or without the group, it cannot;
//   6. deploy/compose.yaml is read by Debian's docker-compose (`config`).
// Exit 1 when a check fails. Under CI=true a missing prerequisite fails; elsewhere it skips loudly.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '../../lab/lib/dockerd.mjs';
import { IS_CI, LabPrerequisiteError, log, sh, sleep, which } from '../../lab/lib/util.mjs';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CACHE = process.env.REPLUG_IMAGE_CACHE ?? join(REPO, 'test', 'deploy', 'cache');
const BASE = 'replug-node-base:local';
const IMAGE = 'replug:test';
const results = [];

function check(name, ok, detail = '') {
  results.push({ name, ok, detail });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitPort(port) {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`mosquitto did not listen on ${port}`);
}

/** debootstrap minbase + this machine's node and npm under /usr/local, cached by Node's version. */
async function baseRootfs(tmp) {
  const tarball = join(CACHE, `node-base-bookworm-${process.version}.tar`);
  if (existsSync(tarball)) return tarball;
  if (!which('debootstrap'))
    throw new LabPrerequisiteError('debootstrap not found', 'apt-get install debootstrap');
  const root = join(tmp, 'base');
  log('debootstrap --variant=minbase bookworm (a few minutes, cached afterwards)');
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', root, 'http://deb.debian.org/debian'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  cpSync(process.execPath, join(root, 'usr/local/bin/node'));
  const npmDir = join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm');
  cpSync(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  execFileSync('ln', ['-sf', '../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm')]);
  // Behind a TLS-intercepting proxy npm needs its CA (docs/deploy.md); the host's bundle has it.
  mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
  cpSync('/etc/ssl/certs/ca-certificates.crt', join(root, 'etc/ssl/certs/ca-certificates.crt'));
  mkdirSync(CACHE, { recursive: true });
  execFileSync('tar', ['-C', root, '-cf', `${tarball}.tmp`, '.']);
  execFileSync('mv', [`${tarball}.tmp`, tarball]);
  return tarball;
}

async function buildImage(d, tmp) {
  if ((await d.docker(['image', 'inspect', BASE], { check: false })).code !== 0) {
    const tarball = await baseRootfs(tmp);
    const r = await d.docker([
      'import',
      '--change',
      'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
      '--change',
      'CMD ["node"]',
      tarball,
      BASE,
    ]);
    log(`base imported: ${r.stdout.trim().slice(0, 19)}`);
  }
  const t0 = Date.now();
  const r = await d.docker(
    [
      'build',
      '--network',
      'host',
      '--build-arg',
      `NODE_IMAGE=${BASE}`,
      '--build-arg',
      'BUILDPLATFORM=linux/amd64',
      '-t',
      IMAGE,
      '.',
    ],
    { cwd: REPO, env: { ...d.env, DOCKER_BUILDKIT: '0' }, check: false },
  );
  check(
    'docker build of the Dockerfile',
    r.code === 0,
    r.code === 0
      ? `${((Date.now() - t0) / 1000).toFixed(0)} s`
      : r.stderr.trim().split('\n').slice(-5).join(' | '),
  );
  return r.code === 0;
}

async function doctorInside(d) {
  const r = await d.docker(['run', '--rm', '--network', 'none', IMAGE, 'doctor', '--json'], { check: false });
  let info;
  try {
    info = JSON.parse(r.stdout).info;
  } catch {}
  check(
    'replug doctor inside reports the Docker runtime',
    info?.runtime === 'docker',
    `runtime=${info?.runtime} (${r.stdout.slice(0, 80) || r.stderr.trim()})`,
  );
}

/** The schemas ship with the image: without docs/schemas the agent's journal check and watch threw there. */
async function schemasInside(d) {
  const code = [
    "const m = await import('/opt/replug/dist/src/mqtt/schema.js');",
    "const all = m.validatePayload('status', { state: 'online' });",
    "const first = m.validatePayload('event', {}, { firstError: true });",
    'console.log(JSON.stringify({ dir: m.findSchemaDir(), all: all.ok, first: first.ok }));',
  ].join(' ');
  const args = [
    'run',
    '--rm',
    '--network',
    'none',
    '--entrypoint',
    'node',
    IMAGE,
    '--input-type=module',
    '-e',
    code,
  ];
  const r = await d.docker(args, { check: false });
  let out;
  try {
    out = JSON.parse(r.stdout.trim().split('\n').at(-1));
  } catch {}
  check(
    'payload validation works inside the image (docs/schemas shipped)',
    r.code === 0 && out?.dir === '/opt/replug/docs/schemas' && out.first === false,
    r.code === 0 ? r.stdout.trim() : r.stderr.trim().split('\n').slice(-2).join(' '),
  );
}

async function agentAndHealth(d, tmp) {
  const port = await freePort();
  const conf = join(tmp, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const mosq = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await waitPort(port);
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'replug/img-pi/#', '-v'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let got = '';
  sub.stdout.on('data', (b) => {
    got += b;
  });
  try {
    await d.docker(['rm', '-f', 'replug-img-agent'], { check: false });
    // The Dockerfile's HEALTHCHECK command, polled every 2 s instead of 30 s so the test does not wait minutes.
    const run = await d.docker(
      [
        'run',
        '-d',
        '--name',
        'replug-img-agent',
        '--network',
        'host',
        '--health-interval',
        '2s',
        '--health-start-period',
        '1s',
        '-e',
        `REPLUG_MQTT_URL=mqtt://127.0.0.1:${port}`,
        IMAGE,
        'agent',
        '--id',
        'img-pi',
      ],
      { check: false },
    );
    if (run.code !== 0) return check('the agent runs in the image', false, run.stderr.trim());
    let health = '';
    for (let i = 0; i < 90 && !(health === 'healthy' && got.includes('replug/img-pi/info ')); i++) {
      await sleep(1000);
      health = (
        await d.docker(['inspect', '-f', '{{.State.Health.Status}}', 'replug-img-agent'], { check: false })
      ).stdout.trim();
    }
    check(
      'the agent in the image publishes to a Mosquitto on the host',
      /replug\/img-pi\/info /.test(got),
      got
        .split('\n')
        .map((l) => l.split(' ')[0])
        .filter(Boolean)
        .slice(0, 4)
        .join(', '),
    );
    check('HEALTHCHECK reports healthy', health === 'healthy', health);
    const hb = await d.docker(['exec', 'replug-img-agent', 'cat', '/var/lib/replug/health.json'], {
      check: false,
    });
    check(
      'health.json is written in the state dir',
      hb.code === 0 && JSON.parse(hb.stdout || '{}').agent === 'img-pi',
      hb.stdout.trim().slice(0, 80) || hb.stderr.trim(),
    );
    const user = await d.docker(['exec', 'replug-img-agent', 'id'], { check: false });
    check(
      'the agent runs as the non-root user 10001 in plugdev',
      /uid=10001.*groups=.*46\(plugdev\)/.test(user.stdout),
      user.stdout.trim(),
    );
  } finally {
    await d.docker(['rm', '-f', 'replug-img-agent'], { check: false });
    sub.kill();
    mosq.kill();
  }
}

/** Opens /dev/bus/usb/001/002 inside; 'ENODEV'/'ENXIO' means the permission and cgroup checks passed. */
async function openNode(d, usbDir, args) {
  const script =
    "try{require('fs').openSync('/dev/bus/usb/001/002','r+');console.log('OPEN')}catch(e){console.log(e.code)}";
  const r = await d.docker(
    [
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${usbDir}:/dev/bus/usb`,
      ...args,
      '--entrypoint',
      'node',
      IMAGE,
      '-e',
      script,
    ],
    { check: false },
  );
  return r.stdout.trim() || r.stderr.trim();
}

async function nodeAccess(d, tmp) {
  // A USB node as the udev rule leaves it (deploy/udev/99-replug.rules: GROUP=plugdev MODE=0660). No USB
  // device sits behind 189:1 on a build machine, so a passed check shows as ENODEV from the driver.
  const usb = join(tmp, 'usb');
  mkdirSync(join(usb, '001'), { recursive: true });
  execFileSync('mknod', ['-m', '0660', join(usb, '001/002'), 'c', '189', '1']);
  execFileSync('chown', ['0:46', join(usb, '001/002')]);
  const passed = (v) => v === 'OPEN' || v === 'ENODEV' || v === 'ENXIO';
  const rule = ['--device-cgroup-rule=c 189:* rmw'];
  const ok = await openNode(d, usb, rule);
  check('the image user + the cgroup rule open a plugdev 0660 node', passed(ok), ok);
  const noRule = await openNode(d, usb, []);
  check('without the cgroup rule it cannot', noRule === 'EPERM', noRule);
  const noGroup = await openNode(d, usb, [...rule, '--user', '10001:10001', '--group-add', '10001']);
  execFileSync('chown', ['0:0', join(usb, '001/002')]);
  const rootOwned = await openNode(d, usb, rule);
  check(
    'without the udev rule (root:root 0660) the image user cannot',
    rootOwned === 'EACCES',
    `${rootOwned}; --user 10001:10001 -> ${noGroup}`,
  );
}

async function compose() {
  if (!which('docker-compose')) {
    if (IS_CI)
      return check(
        'docker-compose config',
        false,
        'docker-compose not found (apt-get install docker-compose)',
      );
    return log(
      'docker-compose not found: compose check skipped (apt-get install docker-compose); under CI=true this fails',
    );
  }
  try {
    const out = sh(
      'docker-compose',
      [
        '-f',
        join(REPO, 'deploy/compose.yaml'),
        '--profile',
        'container',
        '--profile',
        'container-privileged',
        '--profile',
        'container-hostnet',
        'config',
      ],
      {
        env: { ...process.env, REPLUG_TARGETS: '1a86:7523' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const services = (out.match(/^ {2}[a-z-]+:$/gm) ?? []).length;
    check(
      'deploy/compose.yaml is valid for docker-compose',
      /c 189:\* rmw/.test(out),
      `${services} services`,
    );
  } catch (e) {
    check('deploy/compose.yaml is valid for docker-compose', false, String(e.stderr ?? e.message).trim());
  }
}

/** docs/relay.md's sidecar compose snippet, read by docker-compose too. */
function relaySnippet(tmp) {
  const md = readFileSync(join(REPO, 'docs/relay.md'), 'utf8');
  const block = md.match(/```yaml\n(services:\n {2}app:[\s\S]*?)```/)?.[1];
  if (!block) return check("docs/relay.md's sidecar compose snippet", false, 'snippet not found');
  const file = join(tmp, 'sidecar.yaml');
  writeFileSync(file, block);
  try {
    const out = sh('docker-compose', ['-f', file, 'config'], { stdio: ['ignore', 'pipe', 'pipe'] });
    check(
      "docs/relay.md's sidecar compose snippet is valid for docker-compose",
      /network_mode: service:app/.test(out),
    );
  } catch (e) {
    check(
      "docs/relay.md's sidecar compose snippet is valid for docker-compose",
      false,
      String(e.stderr ?? e.message).trim(),
    );
  }
}

async function main() {
  if (process.getuid?.() !== 0) throw new LabPrerequisiteError('dockerd needs root', 'run as root (CI does)');
  for (const t of ['mosquitto', 'mosquitto_sub', 'mknod'])
    if (!which(t))
      throw new LabPrerequisiteError(`${t} not found`, 'apt-get install mosquitto mosquitto-clients');
  const wall = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'replug-image-'));
  const d = await startDockerd({ name: 'image-test', logFile: join(tmp, 'dockerd.log') });
  try {
    if (await buildImage(d, tmp)) {
      await doctorInside(d);
      await schemasInside(d);
      await agentAndHealth(d, tmp);
      await nodeAccess(d, tmp);
    }
    await compose();
    if (which('docker-compose')) relaySnippet(tmp);
  } finally {
    await d.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `${results.length - failed} passed, ${failed} failed (wall ${((Date.now() - wall) / 1000).toFixed(0)} s)`,
  );
  return failed || results.length === 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (e) {
  if (e instanceof LabPrerequisiteError && !IS_CI) {
    console.log(`image test skipped: ${e.message}${e.hint ? ` (${e.hint})` : ''}; under CI=true this fails`);
  } else {
    console.error(`image test failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  }
}
