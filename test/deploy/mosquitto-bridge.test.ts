/**
 * deploy/mosquitto/: the shipped pi.conf/central.conf and ACLs, run for real. Two Mosquitto brokers on free
 * loopback ports; only ports, file paths and the CA are rewritten (TLS between them stays on, with a CA made
 * here). Proves: replug/# crosses the bridge, retained state arrives retained (a late watcher sees it), the
 * Pi's ACL stops an agent writing another agent's subtree, and central's ACL stops a bridge forwarding
 * agents that are not on its Pi. Needs mosquitto, mosquitto-clients and openssl.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assertTools, describeWithTools, freePort, repoFile } from './support.js';

const run = promisify(execFile);
const tools = ['mosquitto', 'mosquitto_pub', 'mosquitto_sub', 'mosquitto_passwd', 'openssl'];

/** Rewrites `directive value` lines of a shipped config; fails if a directive is missing (config drifted). */
function rewrite(config: string, changes: Record<string, string>): string {
  let out = config;
  for (const [directive, value] of Object.entries(changes)) {
    const line = new RegExp(`^${directive} .*$`, 'm');
    if (!line.test(out)) throw new Error(`directive ${directive} not found in config`);
    out = out.replace(line, `${directive} ${value}`);
  }
  // Tests run as root in CI: mosquitto would drop to user "mosquitto", which cannot read the temp dir.
  return process.getuid?.() === 0 ? `user root\n${out}` : out;
}

async function waitForPort(port: number, deadline = Date.now() + 10_000): Promise<void> {
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(s.destroy() === s));
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`broker on port ${port} did not start`);
}

/** SIGTERM, and resolves once the process has exited (SIGKILL if it has not within 5 s). */
function stopBroker(broker: ChildProcess): Promise<void> {
  if (broker.exitCode !== null || broker.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => broker.kill('SIGKILL'), 5000);
    broker.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    broker.kill('SIGTERM');
  });
}

describeWithTools('Mosquitto bridge: Pi broker -> central broker (deploy/mosquitto)', tools, () => {
  let dir: string;
  let piPort: number;
  let centralPort: number;
  const brokers: ChildProcess[] = [];
  const logs: string[] = [];

  /** mosquitto_sub on central as the observer: the messages it gets within `seconds`, as "retain topic payload". */
  async function centralMessages(topic: string, seconds: number, count = 1): Promise<string[]> {
    const args = ['-h', '127.0.0.1', '-p', String(centralPort), '--cafile', join(dir, 'ca.crt')];
    args.push('-u', 'observer', '-P', 'observer-pw', '-t', topic, '-F', '%r %t %p', '-C', String(count));
    args.push('-W', String(seconds));
    try {
      const { stdout } = await run('mosquitto_sub', args);
      return stdout.trim().split('\n').filter(Boolean);
    } catch (err) {
      // -W expiry exits non-zero ("Timed out") after printing what arrived
      return String((err as { stdout?: string }).stdout ?? '')
        .trim()
        .split('\n')
        .filter(Boolean);
    }
  }

  function piPublish(user: string, password: string, topic: string, message: string, retain = false) {
    const args = ['-h', '127.0.0.1', '-p', String(piPort), '-u', user, '-P', password, '-q', '1'];
    return run('mosquitto_pub', [...args, '-t', topic, '-m', message, ...(retain ? ['-r'] : [])]);
  }

  beforeAll(async () => {
    assertTools(tools, 'mosquitto mosquitto-clients openssl');
    dir = mkdtempSync(join(tmpdir(), 'replug-bridge-'));
    [piPort, centralPort] = [await freePort(), await freePort()];
    const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=replug-test-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ]);
    ssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      'central.key',
      '-out',
      'central.csr',
    ]);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl([
      'x509',
      '-req',
      '-in',
      'central.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'san.ext',
      '-out',
      'central.crt',
    ]);

    const users = (file: string, entries: [string, string][]) => {
      writeFileSync(join(dir, file), '', { mode: 0o600 });
      for (const [u, p] of entries) execFileSync('mosquitto_passwd', ['-b', join(dir, file), u, p]);
    };
    // The passwords pi.conf ships as placeholders are the bridge's; the rest are the test's.
    users('pi.passwd', [
      ['pi-01', 'agent-pw'],
      ['pi-03', 'agent-pw'],
      ['bridge', 'change-me-too'],
      ['observer', 'observer-pw'],
    ]);
    users('central.passwd', [
      ['bridge-pi-01', 'change-me'],
      ['observer', 'observer-pw'],
    ]);
    for (const name of ['pi.acl', 'central.acl'])
      writeFileSync(join(dir, name), repoFile(`deploy/mosquitto/${name}`));
    mkdirSync(join(dir, 'pi-db'));
    mkdirSync(join(dir, 'central-db'));

    const central = rewrite(repoFile('deploy/mosquitto/central.conf'), {
      listener: `${centralPort} 127.0.0.1`,
      certfile: join(dir, 'central.crt'),
      keyfile: join(dir, 'central.key'),
      cafile: join(dir, 'ca.crt'),
      password_file: join(dir, 'central.passwd'),
      acl_file: join(dir, 'central.acl'),
      persistence_location: `${join(dir, 'central-db')}/`,
    });
    const pi = rewrite(repoFile('deploy/mosquitto/pi.conf'), {
      listener: `${piPort} 127.0.0.1`,
      address: `127.0.0.1:${centralPort}`,
      password_file: join(dir, 'pi.passwd'),
      acl_file: join(dir, 'pi.acl'),
      persistence_location: `${join(dir, 'pi-db')}/`,
      bridge_cafile: join(dir, 'ca.crt'),
    });
    writeFileSync(join(dir, 'central.conf'), central);
    writeFileSync(join(dir, 'pi.conf'), pi);

    for (const name of ['central', 'pi']) {
      const broker = spawn('mosquitto', ['-c', join(dir, `${name}.conf`)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      broker.stderr?.on('data', (d) => logs.push(`${name}: ${d}`));
      broker.stdout?.on('data', (d) => logs.push(`${name}: ${d}`));
      brokers.push(broker);
      await waitForPort(name === 'pi' ? piPort : centralPort);
    }
  });

  afterAll(async () => {
    // Mosquitto saves its persistence (pi-db/) as it exits on SIGTERM: removing the directory before the
    // brokers had exited raced that write (ENOTEMPTY from rmSync in a CI run).
    await Promise.all(brokers.map(stopBroker));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('forwards an agent status published on the Pi broker to central, retained', async () => {
    await piPublish(
      'pi-01',
      'agent-pw',
      'replug/pi-01/status',
      '{"state":"online","session":1,"ts":1}',
      true,
    );
    // a watcher that connects to central afterwards still gets it, with the retain flag set
    await expect
      .poll(() => centralMessages('replug/pi-01/status', 2), { timeout: 15_000, interval: 200 })
      .toEqual(['1 replug/pi-01/status {"state":"online","session":1,"ts":1}']);
  });

  it('forwards live (non-retained) events as they happen', async () => {
    const pending = centralMessages('replug/pi-01/event', 8);
    await new Promise((r) => setTimeout(r, 700)); // let mosquitto_sub subscribe
    await piPublish('pi-01', 'agent-pw', 'replug/pi-01/event', '{"type":"device.added","seq":1,"ts":2}');
    expect(await pending).toEqual(['0 replug/pi-01/event {"type":"device.added","seq":1,"ts":2}']);
  });

  it("reports the bridge's link state on central", async () => {
    expect(await centralMessages('$SYS/broker/connection/replug-bridge-pi-01/state', 3)).toEqual([
      '1 $SYS/broker/connection/replug-bridge-pi-01/state 1',
    ]);
  });

  it("stops an agent writing another agent's subtree (Pi ACL)", async () => {
    await piPublish('pi-01', 'agent-pw', 'replug/pi-02/status', '{"state":"forged"}', true);
    expect(await centralMessages('replug/pi-02/status', 2)).toEqual([]);
  });

  it('stops a bridge forwarding agents that are not on its Pi (central ACL)', async () => {
    // pi-03 may write its own subtree locally, but bridge-pi-01 is not allowed replug/pi-03/# on central
    await piPublish('pi-03', 'agent-pw', 'replug/pi-03/status', '{"state":"online"}', true);
    expect(await centralMessages('replug/pi-03/status', 2)).toEqual([]);
    expect(logs.join('')).not.toMatch(/Error:/);
  });
});
