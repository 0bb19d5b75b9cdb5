// A minimal newc cpio writer (the format the kernel unpacks into rootfs). Written here rather than piping to
// cpio(1) so the archive can hold device nodes (/dev/console) without mknod rights on the host, and so entries
// come out sorted and with fixed mtimes: same inputs, same bytes.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export class CpioWriter {
  #fd;
  #ino = 1;
  #dirs = new Set();

  constructor(path) {
    this.#fd = openSync(path, 'w');
  }

  #header(name, mode, size, { rdevMajor = 0, rdevMinor = 0 } = {}) {
    const f = (n) => n.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [this.#ino++, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, nameBuf.length, 0];
    const head = Buffer.from(`070701${fields.map(f).join('')}`);
    this.#write(Buffer.concat([head, nameBuf]));
  }

  #written = 0;
  #write(buf) {
    writeSync(this.#fd, buf);
    this.#written += buf.length;
  }
  #pad() {
    const n = (4 - (this.#written % 4)) % 4;
    if (n) this.#write(Buffer.alloc(n));
  }

  /** Adds every missing parent directory of `name` (relative, no leading slash). */
  #parents(name) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) this.dir(parts.slice(0, i).join('/'));
  }

  dir(name, mode = 0o755) {
    if (this.#dirs.has(name)) return;
    this.#parents(name);
    this.#dirs.add(name);
    this.#header(name, S_IFDIR | mode, 0);
    this.#pad();
  }

  file(name, data, mode = 0o644) {
    this.#parents(name);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.#header(name, S_IFREG | mode, buf.length);
    this.#pad();
    this.#write(buf);
    this.#pad();
  }

  fileFrom(name, hostPath, mode) {
    this.file(name, readFileSync(hostPath), mode);
  }

  symlink(name, target) {
    this.#parents(name);
    const buf = Buffer.from(target);
    this.#header(name, S_IFLNK | 0o777, buf.length);
    this.#pad();
    this.#write(buf);
    this.#pad();
  }

  charDev(name, major, minor, mode = 0o600) {
    this.#parents(name);
    this.#header(name, S_IFCHR | mode, 0, { rdevMajor: major, rdevMinor: minor });
    this.#pad();
  }

  close() {
    this.#header('TRAILER!!!', 0, 0);
    this.#pad();
    // The kernel reads archives in 512-byte blocks; pad so a concatenated archive starts cleanly.
    const n = (512 - (this.#written % 512)) % 512;
    if (n) this.#write(Buffer.alloc(n));
    closeSync(this.#fd);
  }
}
