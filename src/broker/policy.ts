/**
 * Who may connect without credentials: pure decisions, unit-tested in test/broker/policy.test.ts.
 *
 * Rule (issue 3): listening beyond loopback requires authentication unless --allow-anonymous is given
 * explicitly. On loopback anonymous clients are allowed by default, because they can only be processes on
 * the same host (the agent next to its embedded broker). Per connection, the same rule is applied to the
 * peer's address, so a broker on 0.0.0.0 with a users file still lets the local agent in anonymously while
 * every remote client must log in.
 */
import { isIP } from 'node:net';
import { ErrorCodes, ReplugError } from '../errors.js';

/** 127.0.0.0/8, ::1, their IPv4-mapped forms, and the name localhost. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export interface ListenPolicyInput {
  host: string;
  usersFile?: string | undefined;
  allowAnonymous?: boolean | undefined;
}

/** Throws BROKER_AUTH_REQUIRED when the broker would accept anonymous clients from the network. */
export function checkListenPolicy(input: ListenPolicyInput): void {
  if (isLoopbackHost(input.host) || input.usersFile || input.allowAnonymous === true) return;
  throw new ReplugError(
    ErrorCodes.BROKER_AUTH_REQUIRED,
    `refusing to listen on ${input.host} without authentication: anyone on the network could publish`,
    {
      hint: 'create users with `replug broker passwd FILE USER` and pass --broker-users FILE, or pass --allow-anonymous if this network is trusted',
    },
  );
}

/**
 * May a client with this peer address connect without a username? `false` means the same as leaving it
 * out (loopback peers only), so a config boolean that defaults to false cannot lock the local agent out.
 */
export function anonymousAllowed(
  allowAnonymous: boolean | undefined,
  remoteAddress: string | undefined,
): boolean {
  return allowAnonymous === true || isLoopbackHost(remoteAddress);
}
