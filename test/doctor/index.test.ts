import { describe, expect, it } from 'vitest';
import { runtimeReport } from '../../src/doctor/index.js';
import { nativeHost } from '../fixtures/doctor/scenarios.js';
import { buildTree } from '../fixtures/doctor/tree.js';

describe('runtimeReport', () => {
  it('derives facts, verdict, summary and info from one read of the tree', async () => {
    const tree = await buildTree(nativeHost);
    try {
      const r = await runtimeReport(tree.roots, {}, { tryOpen: async () => 'ok' });
      expect(r.summary).toBe(
        'runtime=native netns=host udev=present dev=devtmpfs cgroup=allowed userns=initial usb-bus=present uevents=yes',
      );
      expect(r.info).toMatchObject({ runtime: 'native', netns: 'host', udev: 'present', usbBus: true });
      expect(r.verdict.sources.map((s) => s.works)).toEqual(['yes', 'yes', 'yes', 'yes', 'yes']);
      expect(r.facts.dev.nodes).toEqual(['001/001', '001/002', '002/001']);
    } finally {
      await tree.cleanup();
    }
  });

  it('on missing roots it reports absence instead of throwing', async () => {
    const r = await runtimeReport({
      proc: '/nonexistent/proc',
      sys: '/nonexistent/sys',
      dev: '/nonexistent/dev',
      run: '/nonexistent/run',
      root: '/nonexistent',
    });
    expect(r.info).toMatchObject({ usbBus: false, busUsb: 'absent', netns: 'unknown', userns: 'unknown' });
    expect(r.verdict.overall).toMatch(/^no USB bus here/);
  });
});
