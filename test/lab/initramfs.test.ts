// The initramfs builder reads the guest's binaries from the extracted debs: a symlink in there must be
// resolved inside that root (issue 16: lib/systemd/systemd-udevd -> /bin/udevadm was read from the host,
// ENOENT on a machine without the udev package, the host's binary on one with it).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM lab code, no types
import { guestBinaries } from './initramfs.mjs';
// @ts-expect-error plain ESM lab code, no types
import { resolveInRoot } from './lib/guest-root.mjs';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'replug-guest-root-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function put(rel: string, body: string): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), body);
}
function link(rel: string, target: string): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  symlinkSync(target, join(root, rel));
}

describe('initramfs guest binaries', () => {
  it("takes systemd-udevd from the guest's /bin/udevadm, as udev's deb links it", () => {
    put('bin/udevadm', 'guest udevadm');
    link('lib/systemd/systemd-udevd', '/bin/udevadm'); // exactly what Debian's udev 252 ships
    const [[udevd, udevdName], [udevadm]] = guestBinaries(root);
    expect(udevdName).toBe('usr/lib/systemd/systemd-udevd');
    expect(udevd).toBe(join(root, 'bin/udevadm'));
    expect(readFileSync(udevd, 'utf8')).toBe('guest udevadm');
    expect(readFileSync(udevadm, 'utf8')).toBe('guest udevadm');
  });
});

describe('resolveInRoot', () => {
  it('follows absolute links from the root and relative links from their directory', () => {
    put('usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3', 'foo');
    link('usr/lib/x86_64-linux-gnu/libfoo.so.1', 'libfoo.so.1.2.3');
    link('lib/libfoo.so', '/usr/lib/x86_64-linux-gnu/libfoo.so.1');
    expect(resolveInRoot(root, 'lib/libfoo.so')).toBe(join(root, 'usr/lib/x86_64-linux-gnu/libfoo.so.1.2.3'));
  });

  it('resolves a linked directory on the way and keeps .. inside the root', () => {
    put('usr/bin/tool', 'tool');
    link('opt/bin', '../../../../usr/bin');
    expect(resolveInRoot(root, 'opt/bin/tool')).toBe(join(root, 'usr/bin/tool'));
  });

  it('finds /bin/x under usr/bin in a merged-/usr root', () => {
    put('usr/bin/udevadm', 'merged');
    expect(resolveInRoot(root, 'bin/udevadm')).toBe(join(root, 'usr/bin/udevadm'));
  });

  it('names the guest path when it is missing instead of falling back to the host', () => {
    link('lib/systemd/systemd-udevd', '/bin/udevadm');
    expect(() => resolveInRoot(root, 'lib/systemd/systemd-udevd')).toThrow(
      /not in the guest root: \/usr\/bin\/udevadm/,
    );
  });

  it('stops on a symlink loop', () => {
    link('a', '/b');
    link('b', '/a');
    expect(() => resolveInRoot(root, 'a')).toThrow(/too many symlinks/);
  });
});
