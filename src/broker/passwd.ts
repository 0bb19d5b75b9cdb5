/**
 * `replug broker passwd FILE USER [--role agent|observer] [--delete]`: the logic, with the terminal
 * injected. The password never comes from argv (it would show in `ps` and shell history): on a TTY it is
 * typed without echo and confirmed; from a pipe the first line is used, so scripts and tests work.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Role } from './acl.js';
import { hashPassword, isValidUsername, readUsersFile, type ScryptParams, writeUsersFile } from './users.js';

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

/** First line of a non-TTY stream (without its line ending); EOF ends the line too. */
export function readLine(stdin: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const finish = (line: string) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', reject);
      stdin.pause();
      resolve(line.replace(/\r$/, ''));
    };
    const onData = (chunk: Buffer | string) => {
      buffer += chunk.toString();
      const nl = buffer.indexOf('\n');
      if (nl >= 0) finish(buffer.slice(0, nl));
    };
    const onEnd = () => finish(buffer);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', reject);
    stdin.resume();
  });
}

/** Reads a line from a TTY in raw mode, echoing nothing; Ctrl-C / Ctrl-D abort, backspace edits. */
export function readHidden(stdin: Input, stderr: NodeJS.WritableStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let typed = '';
    stdin.setRawMode?.(true);
    const done = (err: Error | undefined) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      stderr.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return done(undefined);
        if (ch === '\u0003' || ch === '\u0004') {
          return done(new ReplugError(ErrorCodes.USAGE, 'password entry aborted'));
        }
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

export async function readNewPassword(
  stdin: Input,
  stderr: NodeJS.WritableStream,
  username: string,
): Promise<string> {
  let password: string;
  if (stdin.isTTY) {
    password = await readHidden(stdin, stderr, `Password for ${username}: `);
    const again = await readHidden(stdin, stderr, 'Repeat password: ');
    if (again !== password)
      throw new ReplugError(ErrorCodes.USAGE, 'passwords do not match; nothing changed');
  } else {
    password = await readLine(stdin);
  }
  if (password === '') {
    throw new ReplugError(ErrorCodes.USAGE, 'empty password; nothing changed', {
      hint: 'type it at the prompt, or pipe it: printf %s "$PW" | replug broker passwd FILE USER',
    });
  }
  return password;
}

export interface PasswdRequest {
  file: string;
  username: string;
  role?: Role;
  delete?: boolean;
  /** Asked for only when adding or updating. */
  password?: () => Promise<string>;
  scrypt?: ScryptParams;
}

export type PasswdOutcome = 'added' | 'updated' | 'deleted';

export async function applyPasswd(request: PasswdRequest): Promise<PasswdOutcome> {
  if (!isValidUsername(request.username)) {
    throw new ReplugError(ErrorCodes.USAGE, `invalid username "${request.username}"`, {
      hint: 'use lowercase a-z, 0-9 and -, like an agent id (an agent publishes under replug/<username>/)',
    });
  }
  const users = await readUsersFile(request.file, true);
  const existing = users.get(request.username);
  if (request.delete) {
    if (!existing) {
      throw new ReplugError(
        ErrorCodes.USAGE,
        `no user "${request.username}" in ${request.file}; nothing changed`,
      );
    }
    users.delete(request.username);
    await writeUsersFile(request.file, users.values());
    return 'deleted';
  }
  if (!request.password) throw new ReplugError(ErrorCodes.INTERNAL, 'applyPasswd needs a password source');
  const role = request.role ?? existing?.role ?? 'agent';
  const hash = await hashPassword(await request.password(), request.scrypt);
  users.set(request.username, { username: request.username, role, hash });
  await writeUsersFile(request.file, users.values());
  return existing ? 'updated' : 'added';
}
