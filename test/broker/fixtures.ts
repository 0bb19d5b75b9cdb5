/** Shared set-up for the broker suites: temp dirs, fast-hash users files, a logger whose lines we read back. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Role } from '../../src/broker/acl.js';
import { hashPassword, writeUsersFile } from '../../src/broker/users.js';
import { createLogger, type Logger } from '../../src/log.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes a users file; N=1024 keeps CONNECT fast in tests (production default is 2^14). */
export async function usersFile(
  dir: string,
  users: ReadonlyArray<{ username: string; role: Role; password: string }>,
): Promise<string> {
  const file = path.join(dir, 'users');
  const records = await Promise.all(
    users.map(async (u) => ({
      username: u.username,
      role: u.role,
      hash: await hashPassword(u.password, { N: 1024, r: 8, p: 1 }),
    })),
  );
  await writeUsersFile(file, records);
  return file;
}

/** A pino logger writing JSON lines into memory. */
export async function memoryLogger(): Promise<{ log: Logger; lines: () => Array<Record<string, unknown>> }> {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = await createLogger({ level: 'debug', destination });
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
