import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatHealSection } from '../../src/doctor/heal.js';
import { healCapabilities } from '../../src/heal/permissions.js';
import { nodeFs } from '../../src/heal/steps/sysfs.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { addHealControls } from './heal-tree.js';

let tree: FakeUsbTree;
beforeEach(async () => {
  tree = await FakeUsbTree.create();
  await tree.plug({ vid: '05e3', pid: '0608', portPath: '1-1' });
  await tree.plug({ vid: '10c4', pid: 'ea60', portPath: '1-1.4' });
  addHealControls(tree, '1-1.4');
});
afterEach(() => tree.cleanup());

const roots = () => ({ sys: tree.sysfsRoot, dev: tree.devfsRoot });

describe('which heal steps can work here (agent start and replug doctor)', () => {
  it('every step works on a tree this process may write', async () => {
    const caps = await healCapabilities(roots());
    expect(caps.map((c) => [c.step, c.ok])).toEqual([
      ['reset', true],
      ['reauthorize', true],
      ['port-power', true],
      ['rebind', true],
    ]);
  });

  it('a read-only /sys (a container without --privileged) says EROFS and the fix for each sysfs step', async () => {
    const readOnly = {
      ...nodeFs,
      access: async (p: string, mode?: number) => {
        if (mode && p.startsWith(tree.sysfsRoot)) throw Object.assign(new Error('EROFS'), { code: 'EROFS' });
        return nodeFs.access(p, mode);
      },
    };
    const caps = await healCapabilities(roots(), undefined, readOnly);
    expect(caps.filter((c) => !c.ok).map((c) => c.step)).toEqual(['reauthorize', 'port-power', 'rebind']);
    for (const c of caps.filter((x) => !x.ok)) {
      expect(c.reason).toContain('EROFS');
      expect(c.fix).toContain('--privileged');
    }
    const text = formatHealSection(caps);
    expect(text).toContain('ok   reset');
    expect(text).toContain('no   rebind');
  });

  it('a bus with nothing plugged yet: reauthorize is judged on a root hub, not reported as "no USB bus"', async () => {
    await tree.unplug('1-1.4');
    await tree.unplug('1-1');
    writeFileSync(join(tree.sysfsDevicesDir, 'usb1', 'authorized'), '1\n');
    const [cap] = await healCapabilities(roots(), ['reauthorize']);
    expect(cap?.reason).toBeUndefined();
    expect(cap?.ok).toBe(true);
  });

  it('a host without a USB bus: the sysfs steps say so instead of claiming they work', async () => {
    await tree.removeBus();
    const caps = await healCapabilities(roots(), ['reauthorize', 'port-power']);
    expect(caps.map((c) => c.ok)).toEqual([false, false]);
    expect(caps[1]?.reason).toContain('disable');
  });
});
