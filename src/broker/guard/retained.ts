/**
 * Retained quota per owner (issue 11: one agent user planted 200,000 retained topics, a 78 MB LevelDB).
 * The owner of a retained topic is the agent whose root it lies under (`replug/<id>/...`, and its Home
 * Assistant discovery `homeassistant/device/replug-<id>/config`), which the ACL makes the only user that
 * may write there; every other topic belongs to one shared owner "". Counting by topic rather than by
 * publisher keeps the count right across restarts: the index is rebuilt from the store at start.
 * Pure bookkeeping; broker.ts asks `check` in authorizePublish and the refusal carries reason code 0x97.
 */

export interface RetainedQuota {
  topics: number;
  bytes: number;
}

export function retainedOwner(topic: string): string {
  if (topic.startsWith('replug/')) {
    const end = topic.indexOf('/', 7);
    return end < 0 ? topic.slice(7) : topic.slice(7, end);
  }
  const ha = /^homeassistant\/device\/replug-([^/]+)\/config$/.exec(topic);
  return ha?.[1] ?? '';
}

export type QuotaDecision = { allow: true } | { allow: false; reason: string };

export interface RetainedIndex {
  /** Would storing this retained message keep its owner within quota? Records it when it does. */
  admit(topic: string, payloadBytes: number): QuotaDecision;
  /** Records what the store already holds (at start), quota or not: it was accepted before. */
  load(topic: string, payloadBytes: number): void;
  /** What one owner holds now. */
  usage(owner: string): RetainedQuota;
  readonly topics: number;
}

export function createRetainedIndex(quota: RetainedQuota): RetainedIndex {
  const sizes = new Map<string, number>();
  const owners = new Map<string, RetainedQuota>();
  const usageOf = (owner: string) => {
    let u = owners.get(owner);
    if (!u) {
      u = { topics: 0, bytes: 0 };
      owners.set(owner, u);
    }
    return u;
  };
  const admit = (topic: string, payloadBytes: number, enforce: boolean): QuotaDecision => {
    const owner = retainedOwner(topic);
    const u = usageOf(owner);
    const before = sizes.get(topic);
    // [MQTT-3.3.1-10] an empty retained payload deletes the topic: always allowed, it frees quota.
    if (payloadBytes === 0) {
      if (before !== undefined) {
        sizes.delete(topic);
        u.topics--;
        u.bytes -= before;
      }
      return { allow: true };
    }
    const size = Buffer.byteLength(topic) + payloadBytes;
    const topics = u.topics + (before === undefined ? 1 : 0);
    const bytes = u.bytes - (before ?? 0) + size;
    const who = owner === '' ? 'topics outside replug/<id>/' : `agent ${owner}`;
    if (enforce && topics > quota.topics) {
      return {
        allow: false,
        reason: `retained quota: ${who} holds ${u.topics} retained topics (retained-topics ${quota.topics})`,
      };
    }
    if (enforce && bytes > quota.bytes) {
      return {
        allow: false,
        reason: `retained quota: ${who} would hold ${bytes} retained bytes (retained-bytes ${quota.bytes})`,
      };
    }
    sizes.set(topic, size);
    u.topics = topics;
    u.bytes = bytes;
    return { allow: true };
  };
  return {
    admit: (topic, payloadBytes) => admit(topic, payloadBytes, true),
    load(topic, payloadBytes) {
      admit(topic, payloadBytes, false);
    },
    usage(owner) {
      const u = owners.get(owner);
      return { topics: u?.topics ?? 0, bytes: u?.bytes ?? 0 };
    },
    get topics() {
      return sizes.size;
    },
  };
}
