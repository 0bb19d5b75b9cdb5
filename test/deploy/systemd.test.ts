/**
 * deploy/systemd/replug.service: parsed for its promises (restart policy, USB-compatible hardening), then
 * verified by systemd itself when systemd-analyze is installed: `verify` (syntax, dependencies, executable)
 * in a throw-away root, and `security --offline` for the exposure score.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithTools, repoFile } from './support.js';

type Unit = Record<string, Map<string, string[]>>;

/** systemd's INI dialect: [Section], Key=Value (keys may repeat), # and ; comments. */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      unit[section] ??= new Map();
      continue;
    }
    const eq = line.indexOf('=');
    const [key, value] = [line.slice(0, eq), line.slice(eq + 1)];
    const values = unit[section]!.get(key) ?? [];
    unit[section]!.set(key, [...values, value]);
  }
  return unit;
}

const unit = parseUnit(repoFile('deploy/systemd/replug.service'));
const service = (key: string) => unit.Service?.get(key)?.at(-1);

describe('deploy/systemd/replug.service', () => {
  it('runs the agent with the environment file, restarting on failure with backoff', () => {
    expect(service('ExecStart')).toBe('/usr/local/bin/replug agent');
    expect(service('EnvironmentFile')).toBe('-/etc/replug/replug.env');
    expect(service('Restart')).toBe('on-failure');
    expect(service('RestartSec')).toBeDefined();
    expect(service('RestartSteps')).toBeDefined();
    expect(service('RestartMaxDelaySec')).toBeDefined();
    expect(unit.Unit?.get('StartLimitBurst')).toBeDefined();
    expect(unit.Install?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('is hardened but keeps USB devices reachable', () => {
    expect(service('DeviceAllow')).toBe('char-usb_device rwm');
    expect(service('DevicePolicy')).toBe('closed');
    expect(service('PrivateDevices')).toBeUndefined(); // would hide /dev/bus/usb
    expect(service('ProtectSystem')).toBe('strict');
    expect(service('StateDirectory')).toBe('replug');
    expect(service('Environment')).toBe('REPLUG_STATE_DIR=%S/replug');
    for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome']) expect(service(key), key).toBe('yes');
    expect(service('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6 AF_NETLINK');
    expect(service('MemoryDenyWriteExecute')).toBeUndefined(); // V8's JIT needs W+X pages
    expect(service('PrivateUsers')).toBeUndefined(); // would unmap plugdev
  });

  it('runs as a dedicated user in plugdev, with no capabilities', () => {
    expect(service('User')).toBe('replug');
    expect(service('SupplementaryGroups')).toBe('plugdev');
    expect(service('CapabilityBoundingSet')).toBe('');
  });

  it('ships an environment file example with the agent settings', () => {
    const env = repoFile('deploy/systemd/replug.env');
    expect(env).toMatch(/^REPLUG_RUNTIME_LABEL=native$/m);
    expect(env).toMatch(/^REPLUG_TARGETS=/m);
    for (const line of env.split('\n').filter((l) => l && !l.startsWith('#')))
      expect(line).toMatch(/^REPLUG_[A-Z_]+=/);
  });
});

describeWithTools('deploy/systemd/replug.service under systemd-analyze', ['systemd-analyze'], () => {
  const root = mkdtempSync(join(tmpdir(), 'replug-systemd-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A root with the distribution's units (for sysinit.target & co.), the unit, and a stand-in executable. */
  function prepareRoot(): string {
    const bin = join(root, 'usr/local/bin/replug');
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o755);
    const systemUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(d));
    if (!systemUnits)
      throw new Error('no systemd unit directory: install systemd (apt-get install -y systemd)');
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync(systemUnits, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    const unitPath = join(root, 'etc/systemd/system/replug.service');
    writeFileSync(unitPath, repoFile('deploy/systemd/replug.service'));
    return unitPath;
  }

  it('passes systemd-analyze verify (only keys newer than this systemd may be reported)', () => {
    const unitPath = prepareRoot();
    const result = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, unitPath], {
      encoding: 'utf8',
      cwd: root,
    });
    const version = Number(
      /systemd (\d+)/.exec(execFileSync('systemd-analyze', ['--version'], { encoding: 'utf8' }))?.[1],
    );
    const problems = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter(Boolean)
      // RestartSteps/RestartMaxDelaySec arrived in systemd 254; older ones ignore them, as the unit says.
      .filter((l) => !(version < 254 && /Unknown key '(RestartSteps|RestartMaxDelaySec)'/.test(l)));
    expect(problems).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('has a low exposure score in systemd-analyze security', () => {
    const unitPath = join(root, 'etc/systemd/system/replug.service');
    const out = execFileSync(
      'systemd-analyze',
      ['security', '--offline=yes', `--root=${root}`, '--no-pager', unitPath],
      {
        encoding: 'utf8',
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const score = Number(/Overall exposure level for replug\.service: ([\d.]+)/.exec(out)?.[1]);
    expect(score).toBeLessThan(3); // systemd calls < 4.0 "OK"; an unhardened service scores 9.6
  });
});
