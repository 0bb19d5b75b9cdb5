import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import { listCommand } from '../../src/commands/list.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';

function capture(s: PassThrough): () => string {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

function fakeCtx(argv: string[], env: Record<string, string> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const ctx: CommandContext = {
    argv,
    env,
    stdin: new PassThrough(),
    stdout,
    stderr,
    signal: new AbortController().signal,
    cwd: '/',
  };
  return { ctx, out: capture(stdout), err: capture(stderr) };
}

describe('replug list', () => {
  let tree: FakeUsbTree | undefined;
  afterEach(async () => {
    await tree?.cleanup();
    tree = undefined;
  });

  it('prints an lsusb-like table with port path, speed, node state and serial', async () => {
    tree = await FakeUsbTree.create();
    await tree.plug({
      vid: 0x1209,
      pid: 0x8566,
      serial: 'SN1',
      manufacturer: 'pid.codes',
      product: 'Probe',
      speed: '12',
    });
    await tree.plug({ vid: 0x0403, pid: 0x6001, portPath: '1-2.3', noNode: true });
    await tree.plug({ vid: 1, pid: 2, nodeContent: Buffer.from('junk') });
    const { ctx, out } = fakeCtx(['--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot]);
    expect(await listCommand.run(ctx)).toBe(0);
    expect(out().split('\n')).toEqual([
      'BUS  DEV  ID         PORT   SPEED  NODE     SERIAL  DESCRIPTION',
      '001  002  1209:8566  1-1    12M    ok       SN1     pid.codes Probe',
      '001  003  0403:6001  1-2.3  480M   missing  -',
      '001  004  0001:0002  1-2    480M   bad      -',
      '',
    ]);
  });

  it('--json gives the full identity and node facts; roots from the environment', async () => {
    tree = await FakeUsbTree.create();
    await tree.plug({ vid: 0x1209, pid: 0x8566, serial: 'SN1' });
    const { ctx, out } = fakeCtx(['--json'], {
      REPLUG_SYSFS_ROOT: tree.sysfsRoot,
      REPLUG_DEVFS_ROOT: tree.devfsRoot,
    });
    expect(await listCommand.run(ctx)).toBe(0);
    const list = JSON.parse(out());
    expect(list).toEqual([
      {
        key: 'serial:SN1',
        vid: '1209',
        pid: '8566',
        serial: 'SN1',
        bus: 1,
        address: 2,
        portPath: '1-1',
        speed: '480',
        bcdDevice: '0100',
        deviceClass: '00',
        devNode: tree.nodePath(1, 2),
        rootHub: false,
        from: 'sysfs',
        node: { path: tree.nodePath(1, 2), state: 'ok' },
      },
    ]);
  });

  it('--all includes root hubs; a devfs-only node is listed from its descriptor', async () => {
    tree = await FakeUsbTree.create();
    const d = await tree.plug({ vid: 0xcafe, pid: 0xbabe });
    const { rmSync } = await import('node:fs');
    rmSync(`${tree.sysfsDevicesDir}/${d.portPath}`, { recursive: true }); // as if only /dev/bus/usb were mounted
    const { ctx, out } = fakeCtx([
      '--all',
      '--json',
      '--sysfs-root',
      tree.sysfsRoot,
      '--devfs-root',
      tree.devfsRoot,
    ]);
    await listCommand.run(ctx);
    const list = JSON.parse(out()) as { vid: string; rootHub: boolean; from: string }[];
    expect(list.map((x) => [x.vid, x.rootHub, x.from])).toEqual([
      ['1d6b', true, 'sysfs'],
      ['cafe', false, 'devfs'],
    ]);
  });

  it('on a host without a USB bus says so in one line and exits 0; JSON is []', async () => {
    tree = await FakeUsbTree.create({ bus: false });
    const a = fakeCtx(['--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot]);
    expect(await listCommand.run(a.ctx)).toBe(0);
    expect(a.out()).toBe(
      `replug: no USB bus on this host (${tree.sysfsRoot}/bus/usb is missing); nothing to list (replug doctor explains why)\n`,
    );
    const b = fakeCtx(['--json', '--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot]);
    expect(await listCommand.run(b.ctx)).toBe(0);
    expect(b.out()).toBe('[]\n');
    expect(b.err()).toContain('no USB bus on this host');
  });

  it('says when the bus has only root hubs', async () => {
    tree = await FakeUsbTree.create();
    const { ctx, out } = fakeCtx(['--sysfs-root', tree.sysfsRoot, '--devfs-root', tree.devfsRoot]);
    await listCommand.run(ctx);
    expect(out()).toBe('no USB devices (the bus has only its root hubs)\n');
  });

  it('through the CLI: --help, and an unknown flag is a usage error (exit 2, one line)', async () => {
    const h = fakeCtx([]);
    expect(await main(['list', '--help'], h.ctx)).toBe(0);
    expect(h.out()).toContain('--devfs-root DIR');
    const u = fakeCtx([]);
    expect(await main(['list', '--bogus'], u.ctx)).toBe(2);
    expect(u.err().split('\n')[0]).toContain("'--bogus'");
    expect(u.err()).not.toContain('    at ');
  });
});
