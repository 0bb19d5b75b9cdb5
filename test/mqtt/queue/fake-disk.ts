/**
 * A disk for the durable queue's port (src/mqtt/queue/disk.ts) that knows what a power cut keeps: file
 * data written but not fsynced lives in the "page cache" only, and a directory entry (create, rename,
 * unlink) is durable only after the directory is fsynced. That is the POSIX minimum (ext4, xfs and
 * tmpfs-backed images keep at least this much). `freezeAt(n)` stops the world just before the n-th
 * operation: from then on every operation fails with EIO; `afterPowerCut()` gives the disk a reboot
 * would find, `afterKill()` what a process killed at that moment leaves (the page cache). `fail()` injects errno failures (ENOSPC, EROFS...) for chosen operations.
 */
import path from 'node:path';
import type { QueueDisk } from '../../../src/mqtt/queue/disk.js';

interface Inode {
  data: Buffer;
  durable: Buffer;
}

type Op =
  | 'mkdirp'
  | 'read'
  | 'open'
  | 'append'
  | 'datasync'
  | 'fsync'
  | 'truncate'
  | 'linked'
  | 'close'
  | 'rename'
  | 'overwrite'
  | 'fsyncDir'
  | 'unlink';

const errno = (code: string, what: string) => Object.assign(new Error(`${code}: ${what}`), { code });

export class FakeDisk implements QueueDisk {
  private entries = new Map<string, Inode>();
  private durableEntries = new Map<string, Inode>();
  private readonly fds = new Map<number, Inode>();
  private nextFd = 100;
  /** Operations performed so far. */
  ops = 0;
  private freezeOp: number | undefined;
  private image: Map<string, Buffer> | undefined;
  private killImage: Map<string, Buffer> | undefined;
  private failure: ((op: Op, file: string) => string | undefined) | undefined;
  /** Every operation in order, `op file` (for a failing test's message). */
  readonly trace: string[] = [];
  /** Chunk size of reads: small and odd, so lines cross chunk boundaries. */
  chunk = 37;

  constructor(files: Map<string, Buffer> = new Map()) {
    for (const [p, data] of files) {
      const inode = { data: Buffer.from(data), durable: Buffer.from(data) };
      this.entries.set(p, inode);
      this.durableEntries.set(p, inode);
    }
  }

  /** Cut the power just before operation n (1-based). */
  freezeAt(n: number): void {
    this.freezeOp = n;
  }

  get frozen(): boolean {
    return this.image !== undefined;
  }

  /** Make operations fail: return an errno to fail that call, undefined to let it through. */
  fail(rule: ((op: Op, file: string) => string | undefined) | undefined): void {
    this.failure = rule;
  }

  /** The disk a reboot finds after the power cut (or now, if it was not cut). */
  afterPowerCut(): FakeDisk {
    return new FakeDisk(this.image ?? this.durableImage());
  }

  /** What a process killed at the freeze (or now) leaves: the kernel keeps its page cache. */
  afterKill(): FakeDisk {
    return new FakeDisk(this.killImage ?? this.cacheImage());
  }

  private cacheImage(): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (const [p, inode] of this.entries) files.set(p, Buffer.from(inode.data));
    return files;
  }

  text(file: string): string | undefined {
    return this.entries.get(file)?.data.toString('utf8');
  }

  private durableImage(): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    for (const [p, inode] of this.durableEntries) files.set(p, Buffer.from(inode.durable));
    return files;
  }

  private op(op: Op, file: string): void {
    this.ops++;
    this.trace.push(`${op} ${path.basename(file)}`);
    if (!this.image && this.freezeOp !== undefined && this.ops >= this.freezeOp) {
      this.image = this.durableImage();
      this.killImage = this.cacheImage();
    }
    if (this.image) throw errno('EIO', `${op} after the power cut`);
    const code = this.failure?.(op, file);
    if (code) throw errno(code, `${op} ${file}`);
  }

  /** Async operations take a turn of the event loop, as the thread pool does: other code runs meanwhile. */
  private tick(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private inode(fd: number): Inode {
    const inode = this.fds.get(fd);
    if (!inode) throw errno('EBADF', `fd ${fd}`);
    return inode;
  }

  async mkdirp(dir: string): Promise<void> {
    await this.tick();
    this.op('mkdirp', dir);
  }

  async readChunks(file: string): Promise<AsyncIterable<Buffer> | undefined> {
    await this.tick();
    this.op('read', file);
    const inode = this.entries.get(file);
    if (!inode) return undefined;
    const data = Buffer.from(inode.data);
    const chunk = this.chunk;
    return (async function* chunks() {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })();
  }

  async openAppend(file: string, truncate = false): Promise<number> {
    await this.tick();
    this.op('open', file);
    let inode = this.entries.get(file);
    if (!inode) {
      inode = { data: Buffer.alloc(0), durable: Buffer.alloc(0) };
      this.entries.set(file, inode);
    }
    if (truncate) inode.data = Buffer.alloc(0);
    const fd = this.nextFd++;
    this.fds.set(fd, inode);
    return fd;
  }

  appendSync(fd: number, data: string): void {
    this.op('append', String(fd));
    const inode = this.inode(fd);
    inode.data = Buffer.concat([inode.data, Buffer.from(data)]);
  }

  async append(fd: number, data: string): Promise<void> {
    await this.tick();
    this.appendSync(fd, data);
  }

  async datasync(fd: number): Promise<void> {
    await this.tick();
    this.op('datasync', String(fd));
    const inode = this.inode(fd);
    inode.durable = Buffer.from(inode.data);
  }

  async fsync(fd: number): Promise<void> {
    await this.tick();
    this.op('fsync', String(fd));
    const inode = this.inode(fd);
    inode.durable = Buffer.from(inode.data);
  }

  async truncate(fd: number, length: number): Promise<void> {
    await this.tick();
    this.op('truncate', String(fd));
    const inode = this.inode(fd);
    inode.data = Buffer.from(inode.data.subarray(0, length));
  }

  async linked(fd: number): Promise<boolean> {
    await this.tick();
    this.op('linked', String(fd));
    const inode = this.inode(fd);
    return [...this.entries.values()].includes(inode);
  }

  async close(fd: number): Promise<void> {
    await this.tick();
    this.op('close', String(fd));
    this.fds.delete(fd);
  }

  renameSync(from: string, to: string): void {
    this.op('rename', to);
    const inode = this.entries.get(from);
    if (!inode) throw errno('ENOENT', from);
    this.entries.delete(from);
    this.entries.set(to, inode);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.tick();
    this.renameSync(from, to);
  }

  async overwrite(file: string, data: string): Promise<void> {
    await this.tick();
    this.op('overwrite', file);
    let inode = this.entries.get(file);
    if (!inode) {
      inode = { data: Buffer.alloc(0), durable: Buffer.alloc(0) };
      this.entries.set(file, inode);
    }
    const buf = Buffer.from(data);
    const next = Buffer.alloc(Math.max(inode.data.length, buf.length));
    inode.data.copy(next);
    buf.copy(next);
    inode.data = next;
    inode.durable = Buffer.from(next);
  }

  async fsyncDir(dir: string): Promise<void> {
    await this.tick();
    this.op('fsyncDir', dir);
    for (const p of [...this.durableEntries.keys()])
      if (path.dirname(p) === dir && !this.entries.has(p)) this.durableEntries.delete(p);
    for (const [p, inode] of this.entries) if (path.dirname(p) === dir) this.durableEntries.set(p, inode);
  }

  async unlink(file: string): Promise<void> {
    await this.tick();
    this.op('unlink', file);
    if (!this.entries.delete(file)) throw errno('ENOENT', file);
  }
}
