import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runRelay } from '../../src/commands/relay.js';
import { ErrorCodes, formatForUser } from '../../src/errors.js';
import { type RunningRelay, startRelay } from '../../src/relay/relay.js';
import { decodeUdevMessage, encodeUdevMessage } from '../../src/relay/udev-message.js';
import { FakeClock } from '../fakes/clock.js';
import fixture from '../fixtures/uevent/udevd-252-net-cpu.json' with { type: 'json' };
import { FakeNetlinkSocket } from './fake-netlink.js';
import { usbDeviceUevent, usbInterfaceUevent } from './usb-uevents.js';

const realUdevd = Buffer.from(fixture.find((m) => m.group === 2)!.hex, 'hex');
const realKernelNet = Buffer.from(fixture.find((m) => m.group === 1)!.hex, 'hex');

describe('startRelay with a fake socket', () => {
  let root: string;
  let socket: FakeNetlinkSocket;
  let clock: FakeClock;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'replug-relay-'));
    await mkdir(join(root, 'proc/net'), { recursive: true });
    await writeFile(join(root, 'proc/net/unix'), 'Num       RefCount Protocol Flags    Type St Inode Path\n');
    socket = new FakeNetlinkSocket();
    clock = new FakeClock();
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const options = (extra = {}) => ({
    openSocket: async () => socket,
    clock,
    runRoot: join(root, 'run'),
    procRoot: join(root, 'proc'),
    sysfsRoot: join(root, 'sys'),
    monotonicUsec: () => 5_000_000n,
    probeMs: 500,
    ...extra,
  });

  /** Starts the relay and lets its probe window pass on the fake clock (after its real file I/O). */
  async function started(extra = {}) {
    const p = startRelay(options(extra));
    await vi.waitFor(() => expect(clock.pendingCount).toBe(1));
    await clock.advance(500);
    return p;
  }

  it('binds groups 1 and 2, proves it may send, creates /run/udev/control and relays USB uevents', async () => {
    const relay = await started();
    expect(socket.groups).toEqual([1, 2]);
    expect(socket.sent[0]!.message.length).toBeLessThan(32); // the permission probe libudev drops
    const control = join(root, 'run/udev/control');
    expect((await stat(control)).isFile()).toBe(true);
    expect(relay.stats()).toMatchObject({ state: 'running', controlFile: 'created' });

    socket.deliver(usbDeviceUevent('add'));
    socket.deliver(usbInterfaceUevent('add'));
    socket.deliver(realKernelNet); // not usb: skipped unless --all
    socket.deliver(usbDeviceUevent('remove', { seqnum: 4300 }));
    await vi.waitFor(() => expect(relay.stats().relayed).toBe(3));

    const sent = socket.sent.slice(1).map((s) => ({ group: s.group, msg: decodeUdevMessage(s.message)! }));
    expect(sent.map((s) => s.group)).toEqual([2, 2, 2]);
    expect(sent.map((s) => s.msg.properties.get('ACTION'))).toEqual(['add', 'add', 'remove']);
    expect(sent[0]!.msg.properties.get('DEVNAME')).toBe('/dev/bus/usb/001/004');
    expect(sent[0]!.msg.properties.get('USEC_INITIALIZED')).toBe('5000000');
    expect(sent[1]!.msg.properties.get('DEVTYPE')).toBe('usb_interface');
    expect(relay.stats()).toMatchObject({ received: 4, relayed: 3, skipped: 1, errors: 0 });

    await relay.stop();
    await expect(stat(control)).rejects.toThrow(); // we created it, we remove it
    expect(socket.closed).toBe(true);
    expect(socket.listenerCount).toBe(0);
    expect(relay.stats().state).toBe('stopped');
    await expect(relay.done).resolves.toBeUndefined();
  });

  it('relays every subsystem with allSubsystems', async () => {
    const relay = await started({ allSubsystems: true });
    socket.deliver(realKernelNet);
    await vi.waitFor(() => expect(relay.stats().relayed).toBe(1));
    await relay.stop();
  });

  it('fails fast with RELAY_PERMISSION and one clear line when sending to group 2 is refused', async () => {
    socket.sendErrno = 'EPERM';
    const err = await startRelay(options()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.RELAY_PERMISSION });
    expect(formatForUser(err)).toContain(
      "replug relay needs CAP_NET_ADMIN in this container's network namespace (docker: --cap-add NET_ADMIN or --privileged)",
    );
    expect(socket.closed).toBe(true);
  });

  it('stops with RELAY_PERMISSION if a later send is refused', async () => {
    const relay = await started();
    socket.sendErrno = 'EACCES';
    socket.deliver(usbDeviceUevent('add'));
    await expect(relay.done).rejects.toMatchObject({ code: ErrorCodes.RELAY_PERMISSION });
    expect(relay.stats()).toMatchObject({ state: 'failed', errors: 1 });
  });

  it('refuses when udevd listens on /run/udev/control in this netns, unless forced', async () => {
    await mkdir(join(root, 'run/udev'), { recursive: true });
    // A real unix socket at the control path, and /proc/net/unix listing it as listening here.
    const net = await import('node:net');
    const server = net.createServer().listen(join(root, 'run/udev/control'));
    await new Promise((r) => server.once('listening', r));
    await writeFile(
      join(root, 'proc/net/unix'),
      'Num       RefCount Protocol Flags    Type St Inode Path\n' +
        '0000000000000000: 00000002 00000000 00010000 0005 01 12345 /run/udev/control\n',
    );
    try {
      const err = await startRelay(options()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCodes.RELAY_UDEV_PRESENT });
      const forced = await startRelay(options({ force: true })); // no probe: we know udevd is here
      expect(forced.stats().state).toBe('running');
      await forced.stop();
    } finally {
      server.close();
    }
  });

  it("relays beside a host udevd's mounted control socket (not listening in this netns)", async () => {
    await mkdir(join(root, 'run/udev'), { recursive: true });
    const net = await import('node:net');
    const server = net.createServer().listen(join(root, 'run/udev/control'));
    await new Promise((r) => server.once('listening', r));
    try {
      const relay = await started();
      expect(relay.stats()).toMatchObject({ state: 'running', controlFile: 'host-socket' });
      await relay.stop();
      expect((await stat(join(root, 'run/udev/control'))).isSocket()).toBe(true); // not ours: left alone
    } finally {
      server.close();
    }
  });

  it('refuses when a real udev message arrives on group 2 during the probe window', async () => {
    const p = startRelay(options()).catch((e: unknown) => e);
    await vi.waitFor(() => expect(clock.pendingCount).toBe(1));
    await clock.advance(100);
    socket.deliver(realUdevd, { port: 777, groups: 2 });
    await clock.advance(400);
    expect(await p).toMatchObject({ code: ErrorCodes.RELAY_UDEV_PRESENT });
    await expect(stat(join(root, 'run/udev/control'))).rejects.toThrow();
  });

  it('stops when a udevd starts broadcasting later; only counts it with force', async () => {
    const relay = await started();
    socket.deliver(Buffer.from('not udev'), { port: 777, groups: 2 }); // not udev-format: ignored
    expect(relay.stats().state).toBe('running');
    // Too short for libudev (properties_off + 32 > length): receivers drop it, so do we.
    socket.deliver(encodeUdevMessage([['SUBSYSTEM', 'usb']]), { port: 777, groups: 2 });
    expect(relay.stats()).toMatchObject({ state: 'running', foreignUdev: 0 });
    socket.deliver(realUdevd, { port: 777, groups: 2 });
    await expect(relay.done).rejects.toMatchObject({ code: ErrorCodes.RELAY_UDEV_PRESENT });

    socket = new FakeNetlinkSocket();
    const forced = await started({ force: true });
    socket.deliver(realUdevd, { port: 777, groups: 2 });
    expect(forced.stats()).toMatchObject({ state: 'running', foreignUdev: 1 });
    await forced.stop();
  });

  it('keeps a control file it did not create', async () => {
    await mkdir(join(root, 'run/udev'), { recursive: true });
    await writeFile(join(root, 'run/udev/control'), '');
    const relay = await started();
    expect(relay.stats().controlFile).toBe('present');
    await relay.stop();
    expect(await readFile(join(root, 'run/udev/control'), 'utf8')).toBe('');
  });
});

describe('replug relay command', () => {
  function ctx(argv: string[], signal: AbortSignal) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d) => {
      out += d;
    });
    stderr.on('data', (d) => {
      err += d;
    });
    return {
      ctx: { argv, env: {}, signal, cwd: '/', stdin: new PassThrough(), stdout, stderr },
      out: () => out,
      err: () => err,
    };
  }

  it('prints --help', async () => {
    const c = ctx(['--help'], new AbortController().signal);
    expect(await runRelay(c.ctx)).toBe(0);
    expect(c.out()).toContain('CAP_NET_ADMIN');
    expect(c.out()).toContain('--force');
  });

  it('reports every bad flag at once', async () => {
    const c = ctx(['--probe-ms', 'soon', '--log-level', 'loud'], new AbortController().signal);
    await expect(runRelay(c.ctx)).rejects.toMatchObject({
      code: ErrorCodes.CONFIG_INVALID,
      problems: [expect.stringContaining('--probe-ms'), expect.stringContaining('--log-level')],
    });
  });

  it('runs until the signal aborts, then returns 0 with a summary line', async () => {
    const socket = new FakeNetlinkSocket();
    const abort = new AbortController();
    const root = await mkdtemp(join(tmpdir(), 'replug-relay-cmd-'));
    const c = ctx(['--probe-ms', '0', '--log-level', 'silent'], abort.signal);
    let running: RunningRelay | undefined;
    const run = runRelay(c.ctx, {
      relay: { openSocket: async () => socket, runRoot: join(root, 'run'), procRoot: join(root, 'proc') },
      onStarted: (r) => {
        running = r;
      },
    });
    await vi.waitFor(() => expect(running?.stats().state).toBe('running'));
    socket.deliver(usbDeviceUevent('add'));
    await vi.waitFor(() => expect(running?.stats().relayed).toBe(1));
    abort.abort();
    expect(await run).toBe(0);
    expect(c.err()).toContain('replug relay: stopped (received 1, relayed 1, skipped 0, errors 0)');
    await rm(root, { recursive: true, force: true });
  });
});
