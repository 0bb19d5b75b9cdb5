import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, ReplugError } from '../../../src/errors.js';
import { hubPort, portPowerStep } from '../../../src/heal/steps/port-power.js';
import { reauthorizeStep } from '../../../src/heal/steps/reauthorize.js';
import { rebindStep } from '../../../src/heal/steps/rebind.js';
import { resetStep } from '../../../src/heal/steps/reset.js';
import type { HealTarget } from '../../../src/heal/steps/sysfs.js';
import { systemClock } from '../../../src/util/clock.js';
import { FakeUsbTree } from '../../fakes/usb-tree.js';
import { addHealControls, recordingFs } from '../heal-tree.js';

let tree: FakeUsbTree;
beforeEach(async () => {
  tree = await FakeUsbTree.create();
});
afterEach(async () => {
  await tree.cleanup();
});

async function target(portPath = '1-1.4', vid = '10c4', pid = 'ea60'): Promise<HealTarget> {
  await tree.plug({
    vid: '05e3',
    pid: '0608',
    portPath: portPath.split('.').slice(0, -1).join('.') || '1-9',
  });
  const device = await tree.plug({ vid, pid, portPath });
  addHealControls(tree, portPath);
  return { spec: { vid, pid }, device, others: [] };
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof ReplugError ? err.code : String(err);
  }
}

const opts = () => ({ sysfsRoot: tree.sysfsRoot, clock: systemClock, gapMs: 1, offMs: 1 });

describe('heal steps on a fake sysfs tree (real files)', () => {
  it('hubPort: the hub and port number of a port path, root hubs included', () => {
    expect(hubPort('1-1.4')).toEqual({ hub: '1-1', hubInterface: '1-1:1.0', port: 4 });
    expect(hubPort('2-3')).toEqual({ hub: 'usb2', hubInterface: '2-0:1.0', port: 3 });
    expect(hubPort('1-1.2.7')).toEqual({ hub: '1-1.2', hubInterface: '1-1.2:1.0', port: 7 });
  });

  it('reauthorize writes 0 then 1 to the device authorized attribute', async () => {
    const t = await target();
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    await reauthorizeStep({ ...opts(), fs }).run(t);
    expect(writes).toEqual([
      { file: 'bus/usb/devices/1-1.4/authorized', data: '0' },
      { file: 'bus/usb/devices/1-1.4/authorized', data: '1' },
    ]);
  });

  it('rebind unbinds the device from its driver (the driver symlink) and binds it again', async () => {
    const t = await target();
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    await rebindStep({ ...opts(), fs }).run(t);
    expect(writes).toEqual([
      { file: 'bus/usb/drivers/usb/unbind', data: '1-1.4' },
      { file: 'bus/usb/drivers/usb/bind', data: '1-1.4' },
    ]);
  });

  it('port-power writes disable 1 then 0 on the port of the hub the target hangs on', async () => {
    const t = await target();
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    await portPowerStep({ ...opts(), fs }).run(t);
    expect(writes).toEqual([
      { file: 'bus/usb/devices/1-1:1.0/1-1-port4/disable', data: '1' },
      { file: 'bus/usb/devices/1-1:1.0/1-1-port4/disable', data: '0' },
    ]);
    expect(readFileSync(join(tree.sysfsDevicesDir, '1-1:1.0/1-1-port4/disable'), 'utf8')).toBe('0');
  });

  it('port-power refuses a hub that also carries a non-target, unless --heal-port-shared', async () => {
    const t = await target();
    await tree.plug({ vid: '046d', pid: 'c52b', portPath: '1-1.2' });
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    const err = await portPowerStep({ ...opts(), fs })
      .run(t)
      .catch((e: ReplugError) => e);
    expect(err).toMatchObject({ code: ErrorCodes.HEAL_REFUSED });
    expect(String((err as Error).message)).toContain('1-1.2');
    expect(writes).toEqual([]);
    await portPowerStep({ ...opts(), fs, shared: true }).run(t);
    expect(writes).toHaveLength(2);
  });

  it('port-power: another target of this agent on the same hub is not a stranger', async () => {
    const t = await target();
    await tree.plug({ vid: '1a86', pid: '7523', portPath: '1-1.3' });
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    await portPowerStep({ ...opts(), fs }).run({ ...t, others: [{ vid: '1a86', pid: '7523' }] });
    expect(writes).toHaveLength(2);
  });

  it('never touches a device that is not the target: another device now at the port is refused', async () => {
    const t = await target();
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    const stranger = { ...t, spec: { vid: '0403', pid: '6001' } };
    for (const step of [
      reauthorizeStep({ ...opts(), fs }),
      rebindStep({ ...opts(), fs }),
      portPowerStep({ ...opts(), fs }),
    ])
      expect(await code(step.run(stranger))).toBe(ErrorCodes.HEAL_REFUSED);
    expect(writes).toEqual([]);
    await tree.unplug('1-1.4');
    expect(await code(reauthorizeStep({ ...opts(), fs }).run(t))).toBe(ErrorCodes.HEAL_NOT_PRESENT);
  });

  it('a target naming two IDs (Coral 1a6e:089a/18d1:9302) is healed under either', async () => {
    const t = await target('1-1.4', '18d1', '9302');
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    const spec = { vid: '1a6e', pid: '089a', alt: [{ vid: '18d1', pid: '9302' }] };
    await reauthorizeStep({ ...opts(), fs }).run({ ...t, spec });
    expect(writes).toHaveLength(2);
  });

  it('errno becomes a stable code with a hint: EROFS/EACCES permission, ENOENT unsupported', async () => {
    const t = await target();
    const ro = recordingFs(tree.sysfsRoot, { authorized: 'EROFS' });
    const err = await reauthorizeStep({ ...opts(), fs: ro.fs })
      .run(t)
      .catch((e: ReplugError) => e);
    expect(err).toMatchObject({ code: ErrorCodes.HEAL_PERMISSION });
    expect((err as ReplugError).hint).toContain('--privileged');
    const denied = recordingFs(tree.sysfsRoot, { unbind: 'EACCES' });
    expect(await code(rebindStep({ ...opts(), fs: denied.fs }).run(t))).toBe(ErrorCodes.HEAL_PERMISSION);
    const old = recordingFs(tree.sysfsRoot, { disable: 'ENOENT' });
    expect(await code(portPowerStep({ ...opts(), fs: old.fs }).run(t))).toBe(ErrorCodes.HEAL_UNSUPPORTED);
  });

  it('an authorize that failed half way still writes 1 when the wait is aborted', async () => {
    const t = await target();
    const { fs, writes } = recordingFs(tree.sysfsRoot);
    const ac = new AbortController();
    const run = reauthorizeStep({ ...opts(), gapMs: 60_000, fs }).run(t, ac.signal);
    await new Promise((r) => setImmediate(r));
    ac.abort(new Error('stopping'));
    await expect(run).rejects.toThrow('stopping');
    expect(writes.map((w) => w.data)).toEqual(['0', '1']);
  });

  it('reset calls the USB reset with the session device after checking sysfs; access errors say how', async () => {
    const t = await target();
    const seen: unknown[] = [];
    await resetStep({ sysfsRoot: tree.sysfsRoot, reset: async (d) => void seen.push(d) }).run(t);
    expect(seen).toEqual([t.device]);
    const denied = resetStep({
      sysfsRoot: tree.sysfsRoot,
      reset: async () => {
        throw new ReplugError(ErrorCodes.USB_ACCESS, 'open failed: Permission denied');
      },
    });
    const err = await denied.run(t).catch((e: ReplugError) => e);
    expect(err).toMatchObject({ code: ErrorCodes.HEAL_PERMISSION });
    expect((err as ReplugError).hint).toContain('c 189:* rmw');
    const stranger = { ...t, spec: { vid: '0403', pid: '6001' } };
    seen.length = 0;
    expect(
      await code(
        resetStep({ sysfsRoot: tree.sysfsRoot, reset: async (d) => void seen.push(d) }).run(stranger),
      ),
    ).toBe(ErrorCodes.HEAL_REFUSED);
    expect(seen).toEqual([]);
  });
});
