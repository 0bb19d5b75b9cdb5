/**
 * Who may publish and subscribe where: pure decisions, no aedes types, so every rule is unit-tested
 * (test/broker/acl.test.ts) and broker.ts only wires them into aedes' authorizePublish/authorizeSubscribe.
 *
 * Principals:
 * - anonymous: a client the broker let in without credentials (by default only from a loopback peer, or
 *   anyone with --allow-anonymous). Without a users file: full access, like a Mosquitto listener with
 *   `allow_anonymous true` and no ACL file. With one: an observer's rights (issue 11).
 * - agent: publishes only under its own root, subscribes to its own root and to homeassistant/status
 *   (the Home Assistant birth message the agent re-sends discovery on).
 * - observer: subscribes anywhere, publishes nowhere (replug watch, dashboards).
 * - operator: reads what an observer reads, and publishes requests only: `replug/<agent>/request/#` and
 *   `replug/_fleet/request/#` (issue 18, `replug request`). Agents may not publish requests, even under
 *   their own root: an agent is not an operator of itself or of the fleet.
 *
 * Patterns use Mosquitto's `pattern` syntax: `%u` is replaced by the username. Usernames are restricted to
 * [a-z0-9-] (users.ts), so a username can never inject `+`, `#` or `/` into a pattern.
 */

export type Role = 'agent' | 'observer' | 'operator';
export const ROLES: readonly Role[] = ['agent', 'observer', 'operator'];

/** What an operator may publish; what no agent may (issue 18). */
export const REQUEST_TOPICS: readonly string[] = ['replug/+/request/#', 'replug/_fleet/request/#'];

/**
 * `observer: true`: an anonymous client of a broker that has a users file (issue 11): it may read as an
 * observer does and write nothing, like Mosquitto refusing anonymous clients once a password file is set.
 */
export type Principal =
  | { kind: 'anonymous'; observer?: boolean }
  | { kind: 'user'; username: string; role: Role };

export interface AclOptions {
  /**
   * Topic patterns an agent may publish to. Default: its own root, and its own Home Assistant device
   * discovery config (src/mqtt/homeassistant.ts publishes `homeassistant/device/replug-<agent>/config`).
   */
  agentPublish?: readonly string[];
  /** Filters an agent may subscribe to (a subscription must lie inside one). Default: own root + homeassistant/status. */
  agentSubscribe?: readonly string[];
  /** Filters an observer may subscribe to. Default: `#` (everything, $SYS included). */
  observerSubscribe?: readonly string[];
}

export const DEFAULT_ACL: Required<AclOptions> = {
  agentPublish: ['replug/%u/#', 'homeassistant/device/replug-%u/config'],
  agentSubscribe: ['replug/%u/#', 'homeassistant/status', 'replug/_fleet/request/#'],
  observerSubscribe: ['#'],
};

export type Decision = { allow: true } | { allow: false; reason: string };

const ALLOW: Decision = { allow: true };

function expand(pattern: string, username: string): string {
  return pattern.replaceAll('%u', username);
}

/**
 * Does a concrete topic match a filter? MQTT 3.1.1 §4.7: `+` one level, `#` this level and all below
 * (also the parent: `a/#` matches `a`), and §4.7.2: a filter starting with a wildcard does not match
 * topics starting with `$`.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Is every topic matched by `inner` also matched by `outer`? Used for SUBSCRIBE: an agent asking for
 * `replug/#` must be refused even though it overlaps its own `replug/a/#`.
 */
export function filterWithin(inner: string, outer: string): boolean {
  const i = inner.split('/');
  const o = outer.split('/');
  if (inner.startsWith('$') && (o[0] === '#' || o[0] === '+')) {
    // §4.7.2: `#` does not reach `$SYS/...`; only an explicit `$...` outer filter covers it.
    return false;
  }
  for (let k = 0; k < o.length; k++) {
    const ol = o[k];
    if (ol === '#') return true;
    const il = i[k];
    if (il === undefined) return false;
    if (il === '#') return false;
    if (ol === '+') continue;
    if (il === '+' || il !== ol) return false;
  }
  return i.length === o.length;
}

export function authorizePublish(principal: Principal, topic: string, acl: AclOptions = {}): Decision {
  // aedes' default hook refuses client publishes to $SYS; replacing the hook must keep that rule.
  if (topic.startsWith('$SYS')) return { allow: false, reason: '$SYS topics are reserved for the broker' };
  // [MQTT-1.5.4-2] a UTF-8 string in MQTT must not contain U+0000; aedes 2.0.0-beta.1 does not check.
  if (topic.includes('\u0000')) return { allow: false, reason: 'topic contains U+0000 (MQTT-1.5.4-2)' };
  if (principal.kind === 'anonymous') {
    if (!principal.observer) return ALLOW;
    return { allow: false, reason: 'anonymous clients may not publish on a broker with users: log in' };
  }
  if (principal.role === 'observer') return { allow: false, reason: 'observers may not publish' };
  const request = REQUEST_TOPICS.some((f) => topicMatches(f, topic));
  if (principal.role === 'operator')
    return request
      ? ALLOW
      : { allow: false, reason: 'operators may publish only requests (replug/<id>/request/...)' };
  if (request) return { allow: false, reason: `agent ${principal.username} may not publish requests` };
  const patterns = acl.agentPublish ?? DEFAULT_ACL.agentPublish;
  if (patterns.some((p) => topicMatches(expand(p, principal.username), topic))) return ALLOW;
  return {
    allow: false,
    reason: `agent ${principal.username} may publish only under replug/${principal.username}/`,
  };
}

export function authorizeSubscribe(principal: Principal, filter: string, acl: AclOptions = {}): Decision {
  if (filter.includes('\u0000')) return { allow: false, reason: 'filter contains U+0000 (MQTT-1.5.4-2)' };
  if (principal.kind === 'anonymous') {
    if (!principal.observer) return ALLOW;
    const patterns = acl.observerSubscribe ?? DEFAULT_ACL.observerSubscribe;
    if (patterns.some((p) => filterWithin(filter, p))) return ALLOW;
    return { allow: false, reason: `anonymous observer may not subscribe to ${filter}` };
  }
  const patterns =
    principal.role === 'agent'
      ? (acl.agentSubscribe ?? DEFAULT_ACL.agentSubscribe)
      : (acl.observerSubscribe ?? DEFAULT_ACL.observerSubscribe);
  if (patterns.some((p) => filterWithin(filter, expand(p, principal.username)))) return ALLOW;
  return { allow: false, reason: `${principal.role} ${principal.username} may not subscribe to ${filter}` };
}

/** `replug-<id>`, the client id an agent connects with (src/mqtt/connect.ts clientId()). */
const AGENT_CLIENT_ID = /^replug-([a-z0-9][a-z0-9-]*)$/;

/**
 * May this principal connect with this client id? (issue 11: an observer took `replug-<id>` 20 times and
 * kicked the agent off, publishing its "offline" will each time.) `isAgent(x)` says whether x is an agent
 * the broker knows (an agent user, or the embedded broker's own agent); only that agent's user may then
 * use `replug-x`. Ids of no known agent (`replug-watch-1a2b` of `replug watch`) stay free.
 */
export function authorizeClientId(
  principal: Principal,
  clientId: string,
  isAgent: (id: string) => boolean,
): Decision {
  const owner = AGENT_CLIENT_ID.exec(clientId)?.[1];
  if (owner === undefined || !isAgent(owner)) return ALLOW;
  if (principal.kind === 'user' && principal.role === 'agent' && principal.username === owner) return ALLOW;
  const who = principal.kind === 'user' ? `${principal.role} ${principal.username}` : 'an anonymous client';
  return { allow: false, reason: `client id ${clientId} belongs to agent ${owner}; ${who} may not use it` };
}
