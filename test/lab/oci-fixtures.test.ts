// The lab's containers are made from the OCI specs the real Docker engine produces (issue 16). This
// regenerates them with a dockerd of its own (test/lab/oci/generate.mjs) and fails with the diff when a
// committed fixture is not what this engine asks its runtime for. Needs root, dockerd, runc: under CI=true
// their absence fails; on a developer machine the suite skips and says so.
import { readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { assertTools, describeWithTools } from '../deploy/support.js';
// @ts-expect-error plain ESM lab code, no types
import { fixturePath, generateSpecs } from './oci/generate.mjs';
// @ts-expect-error plain ESM lab code, no types
import { RECIPES } from './oci/recipes.mjs';

const TOOLS = ['dockerd', 'docker', 'runc', 'containerd', 'mknod'];
const root = process.getuid?.() === 0;

describeWithTools(
  `OCI spec fixtures from dockerd${root ? '' : ' (not root)'}`,
  root ? TOOLS : ['root'],
  () => {
    let specs: Record<string, unknown>;
    beforeAll(async () => {
      if (!root) throw new Error('dockerd needs root: run the suite as root (CI does)');
      assertTools(TOOLS, 'docker.io runc');
      specs = await generateSpecs();
    }, 120_000);

    it.each(RECIPES.map((r: { name: string }) => r.name) as string[])(
      '%s.json is what dockerd generates',
      (name: string) => {
        expect(specs[name], `recipe ${name} produced no spec`).toBeDefined();
        // Compared as data (the committed file is formatted by biome); vitest prints the diff.
        expect(specs[name]).toEqual(JSON.parse(readFileSync(fixturePath(name), 'utf8')));
      },
    );

    it('keeps what makes each recipe differ: capabilities, device rules, namespaces, user', () => {
      // biome-ignore lint/suspicious/noExplicitAny: spec JSON, read by path in the assertions below
      const s = specs as Record<string, any>;
      expect(s.privileged.process.capabilities.bounding.length).toBeGreaterThan(30);
      expect(s.privileged.linux.seccomp).toBeUndefined();
      expect(s['cgroup-rule'].process.capabilities.bounding).not.toContain('CAP_SYS_ADMIN');
      expect(s['cgroup-rule'].linux.resources.devices).toContainEqual({
        allow: true,
        type: 'c',
        major: 189,
        minor: -1,
        access: 'rmw',
      });
      expect(s['cgroup-rule'].process.user).toEqual({ uid: 10001, gid: 10001, additionalGids: [10001, 46] });
      expect(s['device-node'].linux.devices).toEqual([
        expect.objectContaining({ path: '/dev/bus/usb/001/002', type: 'c', major: 189, minor: 1 }),
      ]);
      const net = (n: string) => s[n].linux.namespaces.find((x: { type: string }) => x.type === 'network');
      expect(net('hostnet-udev').path).toBe('{{HOST_NETNS}}');
      expect(net('relay-sidecar').path).toBe('{{NETNS:app}}');
      expect(s['relay-sidecar'].process.capabilities.bounding).toContain('CAP_NET_ADMIN');
      // --userns-remap=default: a user namespace mapping container root to the dockremap subordinate range.
      expect(s.userns.linux.namespaces).toContainEqual({ type: 'user' });
      expect(s.userns.linux.uidMappings).toEqual([expect.objectContaining({ containerID: 0, size: 65536 })]);
      expect(s.userns.linux.uidMappings[0].hostID).toBeGreaterThan(0);
      expect(s['cgroup-rule'].linux.uidMappings).toBeUndefined();
      expect(JSON.stringify(specs)).not.toMatch(/\/var\/lib\/replug|\/tmp\/|replug-oci/);
    });
  },
);
