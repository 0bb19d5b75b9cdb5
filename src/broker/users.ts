/**
 * The broker's users file: one user per line, `username:role:scrypt$N$r$p$salt$hash` (salt and hash in
 * base64, which never contains ':' or '$'); blank lines and lines starting with '#' are ignored.
 * `replug broker passwd` writes it; the broker re-reads it when it changes, so no restart is needed.
 *
 * Hashes: salted scrypt from node:crypto (RFC 7914), N=2^14, r=8, p=1 by default (16 MiB, ~240 ms per
 * verify measured on the shared 2-core dev VM, off the event loop in libuv's pool: slow for a password
 * guesser, invisible for an agent that connects once). Verification compares with
 * timingSafeEqual, and an unknown username still costs one scrypt so response time does not reveal
 * which usernames exist.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, ErrorCodes, errnoOf, ReplugError } from '../errors.js';
import { ROLES, type Role } from './acl.js';

export interface UserRecord {
  username: string;
  role: Role;
  /** `scrypt$N$r$p$salt$hash` */
  hash: string;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

/** Same alphabet as the agent id (DESIGN: `[a-z0-9-]+`): an agent's username IS its topic root. */
const USERNAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function isValidUsername(username: string): boolean {
  return USERNAME.test(username);
}

function derive(
  password: string | Buffer,
  salt: Buffer,
  params: ScryptParams,
  length: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128*N*r bytes; node's default maxmem (32 MiB) would reject larger N with a cryptic error.
    const maxmem = 256 * params.N * params.r;
    scrypt(password, salt, length, { ...params, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params, KEY_LENGTH);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** Parses `scrypt$N$r$p$salt$hash`, refusing parameters that would let a crafted file exhaust memory. */
export function parseHash(encoded: string): ParsedHash | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d+$/.test(x ?? '') ? Number(x) : Number.NaN));
  if (N === undefined || r === undefined || p === undefined) return undefined;
  const powerOfTwo = Number.isInteger(Math.log2(N));
  if (!powerOfTwo || N < 1024 || N > 1 << 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params: { N, r, p }, salt, key };
}

export async function verifyPassword(password: string | Buffer, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (!parsed) return false;
  const candidate = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  return timingSafeEqual(candidate, parsed.key);
}

/** Parses a users file, reporting every bad line at once (habit 6). */
export function parseUsersFile(text: string, source = 'users file'): Map<string, UserRecord> {
  const users = new Map<string, UserRecord>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source}:${index + 1}`;
    const [username, role, hash, ...rest] = line.split(':');
    if (username === undefined || role === undefined || hash === undefined || rest.length > 0) {
      problems.push(`${where}: expected username:role:scrypt$N$r$p$salt$hash`);
      return;
    }
    if (!isValidUsername(username))
      problems.push(`${where}: invalid username "${username}" (use a-z, 0-9, -)`);
    else if (users.has(username)) problems.push(`${where}: duplicate user "${username}"`);
    if (!ROLES.includes(role as Role))
      problems.push(`${where}: unknown role "${role}" (${ROLES.join(' or ')})`);
    if (!parseHash(hash)) problems.push(`${where}: malformed or unsupported password hash`);
    users.set(username, { username, role: role as Role, hash });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return users;
}

export function formatUsersFile(users: Iterable<UserRecord>): string {
  const header =
    '# replug broker users: username:role:scrypt$N$r$p$salt$hash (managed by `replug broker passwd`)';
  const lines = [...users].sort((a, b) => a.username.localeCompare(b.username));
  return `${[header, ...lines.map((u) => `${u.username}:${u.role}:${u.hash}`)].join('\n')}\n`;
}

/** Reads a users file; a missing file is an empty set only when `missingOk` (passwd creating a new file). */
export async function readUsersFile(file: string, missingOk = false): Promise<Map<string, UserRecord>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (missingOk && errnoOf(err) === 'ENOENT') return new Map();
    throw new ReplugError(
      ErrorCodes.CONFIG_INVALID,
      `cannot read users file ${file}: ${errnoOf(err) ?? err}`,
      {
        hint: 'create it with `replug broker passwd <file> <username>`',
        cause: err,
      },
    );
  }
  return parseUsersFile(text, file);
}

/** Writes atomically (temp file + rename) with mode 0600: a crash never leaves half a users file. */
export async function writeUsersFile(file: string, users: Iterable<UserRecord>): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, formatUsersFile(users), { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** A users file as the broker sees it: re-read when its mtime or size changes (checked per CONNECT). */
export class UserStore {
  readonly file: string;
  #users: Map<string, UserRecord>;
  #stamp: string;
  #dummy: Promise<string> | undefined;

  private constructor(file: string, users: Map<string, UserRecord>, stamp: string) {
    this.file = file;
    this.#users = users;
    this.#stamp = stamp;
  }

  static async open(file: string): Promise<UserStore> {
    const stamp = await UserStore.#stampOf(file);
    return new UserStore(file, await readUsersFile(file), stamp);
  }

  static async #stampOf(file: string): Promise<string> {
    try {
      const s = await stat(file);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return 'missing';
    }
  }

  get size(): number {
    return this.#users.size;
  }

  /** The role of a user in the file as last read, without checking any password. */
  roleOf(username: string): Role | undefined {
    return this.#users.get(username)?.role;
  }

  /** Re-reads the file if it changed. A broken edit keeps the previous users and rethrows for the log. */
  async refresh(): Promise<void> {
    const stamp = await UserStore.#stampOf(this.file);
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    this.#users = await readUsersFile(this.file);
  }

  /** The user when username and password match, else undefined; constant work for unknown usernames. */
  async authenticate(username: string, password: string | Buffer): Promise<UserRecord | undefined> {
    const user = this.#users.get(username);
    if (!user) {
      this.#dummy ??= hashPassword('replug-timing-equaliser');
      await verifyPassword(password, await this.#dummy);
      return undefined;
    }
    return (await verifyPassword(password, user.hash)) ? user : undefined;
  }
}
