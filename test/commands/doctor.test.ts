import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import { createDoctorCommand, doctorCommand, resolveRoots } from '../../src/commands/doctor.js';
import { ConfigError } from '../../src/errors.js';
import { dockerBridge } from '../fixtures/doctor/scenarios.js';
import { type BuiltTree, buildTree } from '../fixtures/doctor/tree.js';

function context(argv: string[], env: Record<string, string | undefined> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const ctx: CommandContext = {
    argv,
    env,
    stdin: new PassThrough(),
    stdout,
    stderr,
    signal: new AbortController().signal,
    cwd: '/',
  };
  return { ctx, out: () => out, err: () => err };
}

function rootFlags(tree: BuiltTree): string[] {
  const r = tree.roots;
  return [
    '--proc-root',
    r.proc,
    '--sys-root',
    r.sys,
    '--dev-root',
    r.dev,
    '--run-root',
    r.run,
    '--root',
    r.root,
  ];
}

describe('replug doctor', () => {
  let tree: BuiltTree;
  beforeEach(async () => {
    tree = await buildTree(dockerBridge);
  });
  afterEach(async () => {
    await tree.cleanup();
  });

  it('prints the readable report for the crafted tree and exits 0', async () => {
    const io = context(rootFlags(tree));
    expect(await doctorCommand.run(io.ctx)).toBe(0);
    expect(io.out()).toContain('Summary: runtime=docker netns=own udev=absent dev=tmpfs+bind(/dev/bus/usb)');
    expect(io.out()).toContain('Verdict: replug will reconnect here via devfs+sysfs+uevent');
  });

  it('--json: one object with summary, info, facts, verdict and the roots used', async () => {
    const io = context([...rootFlags(tree), '--json']);
    expect(await createDoctorCommand({ tryOpen: async () => 'EPERM' }).run(io.ctx)).toBe(0);
    const lines = io.out().trim().split('\n');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!);
    expect(doc.info).toMatchObject({ runtime: 'docker', netns: 'own', cgroupUsb: 'denied' });
    expect(doc.facts.cgroup.openResult).toEqual({ node: '/dev/bus/usb/001/001', outcome: 'EPERM' });
    const devfs = doc.verdict.sources.find((s: { source: string }) => s.source === 'devfs');
    expect(devfs.works).toBe('partial');
    expect(devfs.fix[0]).toContain("--device-cgroup-rule='c 189:* rmw'");
    expect(doc.verdict.relayRecommended).toBe(true);
    expect(doc.roots.sys).toBe(tree.roots.sys);
  });

  it('takes sysfs and devfs roots from the aliases and from REPLUG_* variables, flags winning', async () => {
    expect(resolveRoots({ 'sysfs-root': 'fake/sys', 'devfs-root': '/x/dev' }, {}, '/srv/app')).toMatchObject({
      sys: '/srv/app/fake/sys',
      dev: '/x/dev',
      proc: '/proc',
      run: '/run',
      root: '/',
    });
    const env = { REPLUG_SYSFS_ROOT: '/env/sys', REPLUG_DEVFS_ROOT: '/env/dev', REPLUG_RUN_ROOT: '/env/run' };
    expect(resolveRoots({}, env, '/')).toMatchObject({ sys: '/env/sys', dev: '/env/dev', run: '/env/run' });
    expect(resolveRoots({ 'sys-root': '/flag/sys' }, env, '/').sys).toBe('/flag/sys');
  });

  it('reads the tree named by environment variables', async () => {
    const env = {
      REPLUG_PROC_ROOT: tree.roots.proc,
      REPLUG_SYSFS_ROOT: tree.roots.sys,
      REPLUG_DEVFS_ROOT: tree.roots.dev,
      REPLUG_RUN_ROOT: tree.roots.run,
      REPLUG_ROOT: tree.roots.root,
    };
    const io = context(['--json'], env);
    expect(await doctorCommand.run(io.ctx)).toBe(0);
    expect(JSON.parse(io.out()).info.busUsb).toBe('bind');
  });

  it('--help prints usage naming every flag', async () => {
    const io = context(['--help']);
    expect(await doctorCommand.run(io.ctx)).toBe(0);
    for (const flag of [
      '--json',
      '--proc-root',
      '--sys-root',
      '--sysfs-root',
      '--dev-root',
      '--devfs-root',
      '--run-root',
    ]) {
      expect(io.out()).toContain(flag);
    }
  });

  it('an unknown flag is a usage error (exit 2 through the CLI), not a report', async () => {
    await expect(doctorCommand.run(context(['--bogus']).ctx)).rejects.toBeInstanceOf(ConfigError);
    const io = context([]);
    const { argv: _argv, ...rest } = io.ctx;
    expect(await main(['doctor', '--bogus'], rest)).toBe(2);
    expect(io.err()).toContain("Unknown option '--bogus'");
  });

  it('through main(): `replug doctor --debug` is accepted', async () => {
    const io = context([]);
    const { argv: _argv, ...rest } = io.ctx;
    expect(await main(['doctor', ...rootFlags(tree), '--debug'], rest)).toBe(0);
    expect(io.out()).toContain('replug doctor');
  });
});
