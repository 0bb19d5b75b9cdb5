// The guest side of the lab's console channel. Reads `@@CMD {json}` lines from the serial console and answers
// with `@@LAB {json}` lines; background processes stream their output as events. Every event carries `t`, the
// guest's CLOCK_MONOTONIC in ms (process.hrtime), the clock /dev/kmsg and udevadm monitor timestamps use too.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { execArgv, startContainer, stopContainer } from './oci.mjs';

const mono = () => Number(process.hrtime.bigint()) / 1e6;
const send = (obj) => process.stdout.write(`@@LAB ${JSON.stringify({ t: mono(), ...obj })}\n`);
const procs = new Map();
/** How far the /dev/kmsg reader got, for when a sync line does not come back. */
const kmsgSeen = { n: 0, last: '' };

/**
 * Runtimes: 'native'; 'container[:NAME][@RECIPE]', a real OCI container that runc starts from Docker's spec
 * for RECIPE (guest/oci.mjs; default `privileged`, the seed's `docker run --privileged -v /dev/bus/usb:...`);
 * or 'unshare[:NAME]', the lab's earlier hand-made namespace (`unshare -n -m` + container.sh), kept to compare
 * against. Each NAME is one container that every process started in it joins (`runc exec` / nsenter), so an
 * agent, a relay and the libusb control in 'container' share one network namespace, as in one container.
 */
const containers = new Map();
const ociContainers = new Map();

function parseRuntime(runtime) {
  const m = runtime.match(/^(container|unshare)(?::([\w-]+))?(?:@([\w-]+))?$/);
  if (!m) throw new Error(`unknown runtime ${runtime}`);
  return { kind: m[1], name: m[2] ?? 'default', recipe: m[3] ?? 'privileged' };
}

function ociContainer(runtime, { net, device } = {}) {
  const { name, recipe } = parseRuntime(runtime);
  const have = ociContainers.get(name);
  if (have) {
    if (have.recipe !== recipe)
      throw new Error(`container ${name} runs recipe ${have.recipe}, not ${recipe}`);
    return have;
  }
  const peers = Object.fromEntries([...ociContainers.values()].map((c) => [c.recipe, c]));
  const c = startContainer({ name: `lab-${name}`, recipe, device, peers, net });
  ociContainers.set(name, c);
  send({ ev: 'container', name, recipe, pid: c.pid, runtime: 'runc' });
  return c;
}

async function containerPid(runtime, net) {
  const { name } = parseRuntime(runtime);
  const have = containers.get(name);
  if (have && have.exitCode === null) return have.pid;
  const ready = `/var/lab/ct-${name}.ready`;
  rmSync(ready, { force: true });
  const env = { ...process.env, LAB_READY: ready, ...(net ? { LAB_NET: String(net) } : {}) };
  const holder = spawn('unshare', ['-n', '-m', 'sh', '/lab/guest/container.sh', 'sleep', '2147483647'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  holder.stderr.on('data', (d) => {
    err += d;
  });
  for (let i = 0; i < 600 && !existsSync(ready); i++) {
    if (holder.exitCode !== null) throw new Error(`container ${name} failed: ${err.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!existsSync(ready)) throw new Error(`container ${name} not ready: ${err.trim()}`);
  containers.set(name, holder);
  send({ ev: 'container', name, pid: holder.pid });
  return holder.pid;
}

/** [argv, env for spawn()]: in a runc container the process gets the spec's environment plus `env`. */
async function wrap(cmd, runtime, { net, env = {}, device } = {}) {
  const argv = Array.isArray(cmd) ? cmd : ['sh', '-c', cmd];
  if (runtime === 'native') return [argv, { ...process.env, ...env }];
  const { kind } = parseRuntime(runtime);
  if (kind === 'unshare') {
    const pid = await containerPid(runtime, net);
    return [['nsenter', '-t', String(pid), '-n', '-m', '--', ...argv], { ...process.env, ...env }];
  }
  const c = ociContainer(runtime, { net, device });
  return [execArgv(c.name, argv, env), process.env];
}

function lines(stream, onLine) {
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
}

const ops = {
  ping: () => ({ uptime: mono() }),

  exec: async ({ cmd, runtime = 'native', timeout = 60000, env, net, device }) => {
    const [[bin, ...args], penv] = await wrap(cmd, runtime, { net, env, device });
    return new Promise((resolve) => {
      const child = spawn(bin, args, { env: penv, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      child.on('error', (e) => resolve({ code: -1, stdout, stderr: String(e) }));
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  },

  spawn: async ({ name, cmd, runtime = 'native', env, json = false, net, device }) => {
    if (procs.has(name)) throw new Error(`process ${name} already running`);
    const [[bin, ...args], penv] = await wrap(cmd, runtime, { net, env, device });
    const child = spawn(bin, args, { env: penv, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.set(name, child);
    const onLine = (stream) => (line) => {
      let data;
      if (json && stream === 'out') {
        try {
          data = JSON.parse(line);
        } catch {}
      }
      send(data ? { ev: 'line', name, stream, data } : { ev: 'line', name, stream, line });
    };
    lines(child.stdout, onLine('out'));
    lines(child.stderr, onLine('err'));
    child.on('error', (e) => send({ ev: 'exit', name, code: -1, error: String(e) }));
    child.on('close', (code, signal) => {
      procs.delete(name);
      send({ ev: 'exit', name, code, signal });
    });
    return { pid: child.pid };
  },

  kill: async ({ name, signal = 'SIGTERM', timeout = 5000 }) => {
    const child = procs.get(name);
    if (!child) return { running: false };
    const closed = new Promise((r) => child.once('close', r));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), timeout);
    await closed;
    clearTimeout(t);
    return { running: true };
  },

  /** Stops (deletes) a runc container, so the next use of its name starts it afresh, perhaps another recipe. */
  'container-stop': ({ runtime }) => {
    const { name } = parseRuntime(runtime);
    const c = ociContainers.get(name);
    if (c) stopContainer(c.name);
    ociContainers.delete(name);
    return { stopped: Boolean(c) };
  },

  /** Streams the kernel's USB log lines with their own timestamps (µs since boot) from /dev/kmsg. */
  kmsg: () => {
    if (procs.has('kmsg')) return {};
    // Skip the boot log, with slack: the kmsg clock runs tens of ms behind CLOCK_MONOTONIC here.
    const start = (mono() - 5000) * 1000;
    const stream = createReadStream('/dev/kmsg');
    procs.set('kmsg', { kill: () => stream.destroy() });
    let first = true;
    stream.on('data', (chunk) => {
      if (first) {
        first = false;
        send({
          ev: 'kmsg-start',
          start: start / 1000,
          firstRecord: chunk.toString().split('\n')[0].slice(0, 80),
        });
      }
      for (const rec of chunk.toString().split('\n')) {
        kmsgSeen.n++;
        kmsgSeen.last = rec.slice(0, 60);
        const m = rec.match(/^(\d+),(\d+),(\d+),[^;]*;(.*)$/);
        if (!m || Number(m[3]) < start) continue;
        if (/usb|USB|dummy_hcd|gadget|replug-lab/.test(m[4]))
          send({ ev: 'kmsg', ts: Number(m[3]) / 1000, msg: m[4] });
      }
    });
    stream.on('error', (e) => send({ ev: 'kmsg-error', error: String(e) }));
    return {};
  },

  /** Writes a tagged line to /dev/kmsg between two CLOCK_MONOTONIC reads (see LabContext.syncKmsg). */
  kmsgsync: () => {
    const tag = Math.random().toString(36).slice(2, 10);
    const before = mono();
    // Without the newline the kernel holds the record open for a continuation and /dev/kmsg delays it.
    writeFileSync('/dev/kmsg', `replug-lab sync ${tag}\n`);
    const after = mono();
    return { tag, before, after, kmsgSeen };
  },
};

lines(process.stdin, async (line) => {
  const i = line.indexOf('@@CMD ');
  if (i < 0) return;
  let cmd;
  try {
    cmd = JSON.parse(line.slice(i + 6));
  } catch (e) {
    send({ ev: 'bad-command', error: String(e) });
    return;
  }
  if (cmd.op === 'exit') {
    for (const [name] of procs) await ops.kill({ name }).catch(() => {});
    for (const [, holder] of containers) holder.kill('SIGKILL');
    for (const [, c] of ociContainers) stopContainer(c.name);
    send({ id: cmd.id, ok: true });
    process.exit(0);
  }
  try {
    const fn = ops[cmd.op];
    if (!fn) throw new Error(`unknown op ${cmd.op}`);
    send({ id: cmd.id, ok: true, ...(await fn(cmd)) });
  } catch (e) {
    send({ id: cmd.id, ok: false, error: String(e?.message ?? e) });
  }
});
send({ ev: 'ready', node: process.version });
