/**
 * The broker's CONNECT decision (aedes' authenticate hook), with the issue 11 rules:
 * - the embedded agent's one-time credential (`localAgent`) is checked first, in constant time and without
 *   scrypt, so the agent is never queued behind a password guesser on its own loopback;
 * - anonymous clients get an observer's rights once the broker has a users file (acl.ts);
 * - a client id `replug-<id>` of a known agent only for that agent's user (acl.ts authorizeClientId);
 * - password checks go through the per-source login guard (logins.ts): one at a time, delayed after
 *   repeated failures, one log line per source per window;
 * - a refusal says which rule: logged, and sent to MQTT 5 clients as the CONNACK's Reason String.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AuthenticateError, Client } from 'aedes';
import type { Logger } from '../../log.js';
import { type AclOptions, authorizeClientId, authorizePublish, type Principal } from '../acl.js';
import { anonymousAllowed } from '../policy.js';
import type { UserStore } from '../users.js';
import type { LoginGuard } from './logins.js';
import { refusedConnack } from './wire.js';

// MQTT 3.1.1 §3.2.2.3 CONNACK return codes and their MQTT 5 §3.2.2.2 reason codes.
const BAD_CREDENTIALS = { returnCode: 4, reasonCode: 0x86 } as const;
const NOT_AUTHORIZED = { returnCode: 5, reasonCode: 0x87 } as const;
/** MQTT 5 0x9F Connection rate exceeded; 3.1.1 has nothing closer than 3 Server unavailable. */
const RATE_EXCEEDED = { returnCode: 3, reasonCode: 0x9f } as const;
type Refusal = { returnCode: number; reasonCode: number };

export interface LocalAgentCredential {
  username: string;
  password: string;
}

export interface AuthDeps {
  users: UserStore | undefined;
  allowAnonymous: boolean | undefined;
  acl: AclOptions | undefined;
  localAgent: LocalAgentCredential | undefined;
  logins: LoginGuard;
  log: Logger;
  willTopics: WeakMap<Client, string>;
  principals: WeakMap<Client, Principal>;
}

type Done = (err: AuthenticateError | null, success: boolean | null) => void;
interface ConnectingClient {
  id: string;
  version?: number;
  connecting?: boolean;
  conn: { remoteAddress?: string; write?: (b: Buffer) => boolean };
}

/**
 * Refuses a CONNECT with a reason. aedes 2.0.0-beta.1 answers an authenticate error with a bare CONNACK,
 * so the CONNACK is written here (with the Reason String for MQTT 5) and aedes' own is suppressed (its
 * writer sends nothing once `connecting` is false); aedes then closes the socket as before.
 */
export function refuseConnect(client: Client, done: Done, refusal: Refusal, reason: string): void {
  const c = client as unknown as ConnectingClient;
  try {
    c.conn.write?.(refusedConnack(c.version ?? 4, refusal.returnCode, refusal.reasonCode, reason));
    c.connecting = false;
  } catch {
    // A socket already gone: aedes' close path handles it.
  }
  done(Object.assign(new Error(reason), { returnCode: refusal.returnCode }) as AuthenticateError, false);
}

function sameSecret(given: Buffer, expected: string): boolean {
  const want = Buffer.from(expected, 'utf8');
  return given.length === want.length && timingSafeEqual(given, want);
}

export function createAuthenticate(deps: AuthDeps) {
  const { users, log, logins } = deps;
  const isAgent = (id: string) => deps.localAgent?.username === id || users?.roleOf(id) === 'agent';
  // This function is longer than 80 lines because each refusal names its rule in the log and the CONNACK.
  return function authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: Done,
  ) {
    const c = client as unknown as ConnectingClient;
    const peer = c.conn.remoteAddress ?? 'unknown';
    const refuse = (refusal: Refusal, reason: string, fields: Record<string, unknown> = {}) => {
      log.warn({ client: client.id, peer, ...fields }, `broker refused client ${client.id}: ${reason}`);
      refuseConnect(client, done, refusal, reason);
    };
    const admit = (principal: Principal) => {
      const id = authorizeClientId(principal, client.id, isAgent);
      if (!id.allow) return refuse(NOT_AUTHORIZED, id.reason, { rule: 'client-id', username });
      // A will is published when the client is gone (or, after a broker crash, with no client at all,
      // which the publish hook cannot attribute), so its topic is checked here, at CONNECT, as
      // Mosquitto does: an agent cannot plant a will under another agent's root.
      const will = deps.willTopics.get(client);
      const decision = will === undefined ? undefined : authorizePublish(principal, will, deps.acl);
      if (decision && !decision.allow) {
        const why =
          principal.kind === 'user' && principal.role === 'agent' && will?.startsWith('replug/')
            ? `its will ${will} is outside its root: an agent's id must be its username (${principal.username})`
            : `will ${will}: ${decision.reason}`;
        return refuse(NOT_AUTHORIZED, why, { rule: 'will', topic: will, username });
      }
      deps.principals.set(client, principal);
      done(null, true);
    };
    const local = deps.localAgent;
    if (local && username === local.username && password && sameSecret(password, local.password)) {
      return admit({ kind: 'user', username: local.username, role: 'agent' });
    }
    if (!username || !users) {
      // No users file: a username is only a label, as with Mosquitto's allow_anonymous and no password_file.
      if (anonymousAllowed(deps.allowAnonymous, peer))
        return admit({ kind: 'anonymous', observer: Boolean(users) });
      if (username)
        return refuse(BAD_CREDENTIALS, 'this broker has no users: connect without a username', {
          rule: 'users',
        });
      return refuse(NOT_AUTHORIZED, 'anonymous clients are allowed from loopback only: log in', {
        rule: 'anonymous',
      });
    }
    void logins
      .turn(peer, async () => {
        await users
          .refresh()
          .catch((err: unknown) =>
            log.error({ err, file: users.file }, 'users file unreadable, keeping previous users'),
          );
        return users.authenticate(username, password ?? Buffer.alloc(0));
      })
      .then(
        (user) => {
          if (user === 'busy')
            return refuse(RATE_EXCEEDED, 'too many logins waiting from this address', { rule: 'login-rate' });
          if (!user) {
            logins.failed(peer, 'bad username or password');
            // Logged once per source and window by the guard (report), not here per attempt.
            return refuseConnect(client, done, BAD_CREDENTIALS, 'bad username or password');
          }
          logins.succeeded(peer);
          admit({ kind: 'user', username: user.username, role: user.role });
        },
        (err: unknown) => refuseConnect(client, done, BAD_CREDENTIALS, String(err)),
      );
  };
}
