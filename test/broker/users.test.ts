import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  formatUsersFile,
  hashPassword,
  parseHash,
  parseUsersFile,
  readUsersFile,
  type ScryptParams,
  UserStore,
  verifyPassword,
  writeUsersFile,
} from '../../src/broker/users.js';
import { ConfigError, ErrorCodes, ReplugError } from '../../src/errors.js';

// The smallest parameters parseHash accepts: keeps the suite fast; the default is checked separately.
const FAST: ScryptParams = { N: 1024, r: 8, p: 1 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'replug-users-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword('s3cret', FAST);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyPassword('s3cret', hash)).toBe(true);
    expect(await verifyPassword(Buffer.from('s3cret'), hash)).toBe(true);
    expect(await verifyPassword('s3cret ', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });
  it('salts: the same password hashes differently twice', async () => {
    expect(await hashPassword('x', FAST)).not.toBe(await hashPassword('x', FAST));
  });
  it('uses N=2^14 by default', async () => {
    expect(parseHash(await hashPassword('x'))?.params).toEqual({ N: 16384, r: 8, p: 1 });
  });
  it('rejects hashes whose parameters would exhaust memory or are malformed', () => {
    const salt = Buffer.alloc(16).toString('base64');
    const key = Buffer.alloc(32).toString('base64');
    expect(parseHash(`scrypt$1048576$8$1$${salt}$${key}`)).toBeDefined();
    expect(parseHash(`scrypt$4194304$8$1$${salt}$${key}`)).toBeUndefined();
    expect(parseHash(`scrypt$1000$8$1$${salt}$${key}`)).toBeUndefined();
    expect(parseHash(`bcrypt$1024$8$1$${salt}$${key}`)).toBeUndefined();
    expect(parseHash(`scrypt$1024$8$1$${salt}`)).toBeUndefined();
  });
});

describe('users file', () => {
  it('round-trips through format and parse, skipping comments and blank lines', async () => {
    const a = { username: 'pi-kitchen', role: 'agent' as const, hash: await hashPassword('a', FAST) };
    const o = { username: 'dash', role: 'observer' as const, hash: await hashPassword('o', FAST) };
    const text = `${formatUsersFile([a, o])}\n# a comment\n`;
    expect(text.startsWith('#')).toBe(true);
    const users = parseUsersFile(text);
    expect([...users.keys()]).toEqual(['dash', 'pi-kitchen']);
    expect(users.get('pi-kitchen')).toEqual(a);
  });
  it('reports every bad line at once with its line number', () => {
    const text = ['Bad_Name:agent:x', 'ok:wizard:scrypt$1$1$1$a$b', 'nocolons'].join('\n');
    let caught: unknown;
    try {
      parseUsersFile(text, 'users');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems;
    expect(problems).toContain('users:1: invalid username "Bad_Name" (use a-z, 0-9, -)');
    expect(problems).toContain('users:2: unknown role "wizard" (agent or observer or operator)');
    expect(problems).toContain('users:3: expected username:role:scrypt$N$r$p$salt$hash');
    expect(problems.length).toBe(5); // two bad hashes as well
  });
  it('writes atomically with mode 0600 and reads back', async () => {
    const file = path.join(dir, 'users');
    await writeUsersFile(file, [{ username: 'a', role: 'agent', hash: await hashPassword('p', FAST) }]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readUsersFile(file)).get('a')?.role).toBe('agent');
  });
  it('treats a missing file as empty only when asked', async () => {
    const file = path.join(dir, 'absent');
    expect((await readUsersFile(file, true)).size).toBe(0);
    await expect(readUsersFile(file)).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
  });
});

describe('UserStore', () => {
  it('authenticates, refuses unknown users and wrong passwords, and picks up edits', async () => {
    const file = path.join(dir, 'users');
    await writeUsersFile(file, [{ username: 'a', role: 'agent', hash: await hashPassword('pa', FAST) }]);
    const store = await UserStore.open(file);
    expect((await store.authenticate('a', 'pa'))?.role).toBe('agent');
    expect(await store.authenticate('a', 'wrong')).toBeUndefined();
    expect(await store.authenticate('ghost', 'pa')).toBeUndefined();

    const before = await readFile(file, 'utf8');
    await writeFile(file, `${before}b:observer:${await hashPassword('pb', FAST)}\n`);
    await store.refresh();
    expect((await store.authenticate('b', 'pb'))?.role).toBe('observer');
    expect(store.size).toBe(2);
  });
  it('keeps the previous users when an edit breaks the file', async () => {
    const file = path.join(dir, 'users');
    await writeUsersFile(file, [{ username: 'a', role: 'agent', hash: await hashPassword('pa', FAST) }]);
    const store = await UserStore.open(file);
    await writeFile(file, 'garbage line that is long enough to change the size\n');
    await expect(store.refresh()).rejects.toBeInstanceOf(ReplugError);
    expect((await store.authenticate('a', 'pa'))?.username).toBe('a');
  });
});
