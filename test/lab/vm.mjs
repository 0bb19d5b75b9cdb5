// Boots the lab VM (QEMU, TCG) and gives the harness two channels into it:
//   qmp      the QEMU Machine Protocol on a unix socket: hotplug devices, wait for DEVICE_DELETED;
//   console  the serial console on QEMU's stdio: `@@CMD {json}` in, `@@LAB {json}` out (guest/agent.mjs).
// QEMU is always killed when the VM is closed or the harness exits.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CACHE_DIR, exists, LabPrerequisiteError, log, sleep, which } from './lib/util.mjs';

/** The kernel accepts concatenated cpio archives; QEMU takes one initrd file, so the parts are joined. */
function joinInitrd(parts, cacheDir) {
  const out = join(cacheDir, 'initramfs', 'boot.cpio');
  const stamp = `${out}.parts`;
  if (exists(out) && exists(stamp) && readFileSync(stamp, 'utf8') === parts.join('\n')) return out;
  const fd = openSync(out, 'w');
  for (const p of parts) writeSync(fd, readFileSync(p));
  closeSync(fd);
  writeFileSync(stamp, parts.join('\n'));
  return out;
}

class Qmp extends EventEmitter {
  #sock;
  #buf = '';
  #pending = [];

  static async connect(path, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const q = new Qmp();
        await q.#open(path);
        return q;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`QMP socket ${path}: ${e.message}`);
        await sleep(100);
      }
    }
  }

  #open(path) {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      sock.once('error', reject);
      sock.setEncoding('utf8');
      let greeted = false;
      sock.on('data', (d) => {
        this.#buf += d;
        for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
          const line = this.#buf.slice(0, i).trim();
          this.#buf = this.#buf.slice(i + 1);
          if (!line) continue;
          const msg = JSON.parse(line);
          if (msg.QMP && !greeted) {
            greeted = true;
            this.#sock = sock;
            this.execute('qmp_capabilities').then(() => resolve(), reject);
          } else if (msg.event) this.emit('event', msg);
          else this.#pending.shift()?.(msg);
        }
      });
    });
  }

  /** Sends one command; resolves its `return`, rejects with QMP's error description. */
  execute(command, args) {
    return new Promise((resolve, reject) => {
      this.#pending.push((msg) =>
        msg.error ? reject(new Error(`${command}: ${msg.error.desc}`)) : resolve(msg.return),
      );
      this.#sock.write(
        `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
      );
    });
  }

  /** Waits for an event matching `pred`, e.g. DEVICE_DELETED for one id. */
  waitEvent(pred, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('event', on);
        reject(new Error(`QMP event not seen in ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (ev) => {
        if (!pred(ev)) return;
        clearTimeout(t);
        this.off('event', on);
        resolve(ev);
      };
      this.on('event', on);
    });
  }

  close() {
    this.#sock?.destroy();
  }
}

export class Vm extends EventEmitter {
  qmp;
  #child;
  #dir;
  #nextId = 1;
  #waiters = new Map();
  #exited;
  consoleLog = [];

  /**
   * @param {{kernel: string, initrd: string[], memMb?: number, smp?: number, bootTimeoutMs?: number,
   *          cacheDir?: string}} opts
   */
  static async boot(opts) {
    const vm = new Vm();
    await vm.#boot(opts);
    return vm;
  }

  async #boot({ kernel, initrd, memMb = 1536, smp = 1, bootTimeoutMs = 180000, cacheDir = CACHE_DIR }) {
    const qemu = which('qemu-system-x86_64');
    if (!qemu)
      throw new LabPrerequisiteError('qemu-system-x86_64 not found', 'apt-get install qemu-system-x86');
    this.#dir = mkdtempSync(join(tmpdir(), 'replug-lab-'));
    const qmpPath = join(this.#dir, 'qmp.sock');
    const args = [
      '-M',
      'q35',
      '-m',
      String(memMb),
      '-smp',
      String(smp),
      '-accel',
      process.env.REPLUG_LAB_ACCEL ?? 'tcg',
      '-display',
      'none',
      '-no-reboot',
      '-nodefaults',
      '-chardev',
      'stdio,id=con,signal=off',
      '-serial',
      'chardev:con',
      '-kernel',
      kernel,
      '-initrd',
      joinInitrd(initrd, cacheDir),
      '-append',
      'console=ttyS0 quiet loglevel=1 panic=-1',
      '-device',
      'qemu-xhci,id=xhci',
      '-qmp',
      `unix:${qmpPath},server=on,wait=off`,
    ];
    const started = Date.now();
    this.#child = spawn(qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#exited = new Promise((r) => this.#child.once('exit', (code, signal) => r({ code, signal })));
    this.#exited.then(({ code, signal }) => {
      this.emit('exit', code, signal);
      for (const [, w] of this.#waiters) w.reject(new Error(`QEMU exited (${code ?? signal})`));
      this.#waiters.clear();
    });
    // Never leave QEMU behind, whatever happens to the harness: normal exit, Ctrl-C, a CI runner's TERM.
    const kill = () => this.#child.kill('SIGKILL');
    process.once('exit', kill);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(sig, () => {
        kill();
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
      });
    }
    this.#child.stderr.setEncoding('utf8').on('data', (d) => this.consoleLog.push(`[qemu] ${d}`));
    createInterface({ input: this.#child.stdout }).on('line', (raw) => this.#onLine(raw));
    this.qmp = await Qmp.connect(qmpPath, 30000);
    const ready = await this.waitEvent((m) => m.ev === 'ready', bootTimeoutMs).catch((e) => {
      throw new Error(`guest did not come up: ${e.message}\n${this.consoleLog.slice(-30).join('\n')}`);
    });
    this.bootMs = Date.now() - started;
    log(`VM up in ${(this.bootMs / 1000).toFixed(1)} s (guest node ${ready.node})`);
  }

  #onLine(raw) {
    const line = raw.replace(/\r$/, '');
    const i = line.indexOf('@@LAB ');
    if (i < 0) {
      if (line.trim()) this.consoleLog.push(line);
      if (this.consoleLog.length > 2000) this.consoleLog.splice(0, 1000);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(line.slice(i + 6));
    } catch {
      this.consoleLog.push(line);
      return;
    }
    if (msg.id !== undefined && this.#waiters.has(msg.id)) {
      const w = this.#waiters.get(msg.id);
      this.#waiters.delete(msg.id);
      msg.ok ? w.resolve(msg) : w.reject(new Error(msg.error));
    }
    this.emit('msg', msg);
  }

  /** Sends a command to the guest agent and resolves its answer. */
  call(op, args = {}, timeoutMs = 120000) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new Error(`guest op ${op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(id, {
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.#child.stdin.write(`@@CMD ${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Runs a shell command in the guest; rejects unless it exits 0 (unless check=false). */
  async sh(cmd, { runtime = 'native', timeoutMs = 60000, check = true, env, net, device } = {}) {
    const r = await this.call(
      'exec',
      { cmd, runtime, timeout: timeoutMs, env, net, device },
      timeoutMs + 10000,
    );
    if (check && r.code !== 0)
      throw new Error(`guest: ${cmd} -> ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  }

  /** Resolves the first console message matching `pred` within the timeout. */
  waitEvent(pred, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('msg', on);
        reject(new Error(`no matching guest event in ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m) => {
        if (!pred(m)) return;
        clearTimeout(t);
        this.off('msg', on);
        resolve(m);
      };
      this.on('msg', on);
    });
  }

  async close() {
    if (!this.#child || this.#child.exitCode !== null) return;
    try {
      await this.call('exit', {}, 5000);
      await Promise.race([this.#exited, sleep(10000)]);
    } catch {}
    this.qmp?.close();
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
    await this.#exited;
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
