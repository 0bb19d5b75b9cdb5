/**
 * Issue 12: values from sysfs were published unchecked: devnum 200 and 4294967296, busnum 1e20, a 5 MB
 * manufacturer, a 2 MB serial (a 9.5 MB `devices` payload) and ANSI escapes. Replayed with the real CLI
 * on a fake tree: the retained `devices` payload must be schema-valid and small, and the log must say
 * once per device what was cut or why it was ignored.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validatePayload } from '../../src/mqtt/schema.js';
import { FakeUsbTree } from '../fakes/usb-tree.js';
import { embeddedBrokerUrl, ensureBuilt, spawnAgent } from '../helpers/agent-process.js';

const ESC = '\u001b]0;PWNED\u0007\u001b[31mred';

async function hostileTree(): Promise<FakeUsbTree> {
  const tree = await FakeUsbTree.create();
  const set = (port: string, attr: string, value: string) =>
    writeFile(join(tree.sysfsDevicesDir, port, attr), `${value}\n`);
  await tree.plug({ vid: 0x1209, pid: 0x31, portPath: '1-1', noNode: true });
  await set('1-1', 'devnum', '200');
  await tree.plug({ vid: 0x1209, pid: 0x32, portPath: '1-2', noNode: true });
  await set('1-2', 'devnum', '4294967296');
  await tree.plug({ vid: 0x1209, pid: 0x33, portPath: '1-3', noNode: true });
  await set('1-3', 'busnum', '100000000000000000000');
  await tree.plug({ vid: 0x1209, pid: 0x34, portPath: '1-4', manufacturer: 'M'.repeat(5 * 1024 * 1024) });
  await tree.plug({ vid: 0x1209, pid: 0x35, portPath: '1-5', serial: 'S'.repeat(2 * 1024 * 1024) });
  await tree.plug({ vid: 0x1209, pid: 0x36, portPath: '1-6', product: `Evil${ESC}`, serial: `AB${ESC}` });
  await tree.plug({ vid: 0x1209, pid: 0x37, portPath: '1-7', speed: `480${ESC}` });
  return tree;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('sysfs values no device can have (issue 12)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'replug-hostile-values-'));
  }, 240_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes a small, schema-valid devices payload and says once what it cut', async () => {
    const tree = await hostileTree();
    const proc = spawnAgent({
      id: 'hostile-values',
      sysfsRoot: tree.sysfsRoot,
      devfsRoot: tree.devfsRoot,
      stateDir: join(dir, 'state'),
    });
    try {
      const url = await embeddedBrokerUrl(proc);
      await proc.waitForLog((l) => /^agent hostile-values started/.test(l.msg), 15_000, 'started');
      const client = await mqtt.connectAsync(url);
      const got: Buffer[] = [];
      client.on('message', (_t, p) => got.push(p));
      await client.subscribeAsync('replug/hostile-values/devices', { qos: 1 });
      const deadline = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await client.endAsync();
      const raw = got.at(-1);
      expect(raw, 'a retained devices payload').toBeDefined();
      expect(raw?.length ?? 0).toBeLessThan(8 * 1024);
      const payload = JSON.parse(String(raw)) as { devices: Record<string, unknown>[] };
      expect(validatePayload('devices', payload)).toEqual({ ok: true });
      const pids = payload.devices.map((d) => d.pid).sort();
      expect(pids).toEqual(['0034', '0035', '0036', '0037']);
      for (const d of payload.devices)
        for (const v of Object.values(d)) if (typeof v === 'string') expect(CONTROL.test(v)).toBe(false);
      // One line per device with something cut or refused, naming it (devfs and sysfs both saw most).
      const said = proc.logs.filter((l) => l.level === 40 && /^device 1209:00(3\d) /.test(l.msg));
      const perDevice = new Map<string, number>();
      for (const l of said) {
        const pid = /^device 1209:(\w{4})/.exec(l.msg)?.[1] ?? '';
        perDevice.set(pid, (perDevice.get(pid) ?? 0) + 1);
      }
      expect([...perDevice.keys()].sort()).toEqual(['0031', '0032', '0033', '0034', '0035', '0036', '0037']);
      for (const n of perDevice.values()) expect(n).toBe(1);
      expect(said.find((l) => l.msg.includes('0031'))?.msg).toMatch(/ignored \(from sysfs\): address 200/);
      expect(said.find((l) => l.msg.includes('0034'))?.msg).toMatch(
        /manufacturer: cut from \d+ to 126 characters/,
      );
    } finally {
      await proc.stop();
      await tree.cleanup();
    }
  }, 60_000);
});
