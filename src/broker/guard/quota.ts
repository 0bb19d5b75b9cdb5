/**
 * The retained quota wired into aedes (issue 11): the index (retained.ts) rebuilt from the store at start,
 * and the refusal a client sees. aedes 2.0.0-beta.1 answers every authorizePublish error with 0x87 Not
 * authorized; MQTT 5 has 0x97 Quota exceeded for this (§3.4.2.1), so for MQTT 5 the PUBACK/PUBREC is
 * written here and the packet marked as aedes marks refused ones (`_notAuthorized`: not stored, not sent
 * on; publish.js enqueuePublish). MQTT 3.1.1 has no negative acknowledgement: the connection is closed,
 * as for an ACL refusal.
 */
import type { Aedes, Client, PublishPacket } from 'aedes';
import { createRetainedIndex, type RetainedIndex, type RetainedQuota } from './retained.js';
import { publishAck } from './wire.js';

/** MQTT 5.0 §2.4 reason code 0x97 Quota exceeded. */
export const QUOTA_EXCEEDED = 0x97;

interface RetainedStore {
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer | string }>;
}

/** One pass over what the store holds, once, at start (bench/abuse.mjs prints its time for 200,000). */
export async function loadRetainedIndex(aedes: Aedes, quota: RetainedQuota): Promise<RetainedIndex> {
  const index = createRetainedIndex(quota);
  const store = (aedes as unknown as { persistence: RetainedStore }).persistence;
  for await (const packet of store.createRetainedStream('#')) {
    index.load(packet.topic, Buffer.byteLength(packet.payload));
  }
  return index;
}

/**
 * Keeps the index on what the store holds: every retained write, whoever makes it, is recorded after it
 * succeeds. authorizePublish sees only client publishes; wills a crashed broker left behind are published
 * by aedes itself (client null), and an MQTT 5 retained message past its Message Expiry Interval is deleted
 * by aedes' subscribe handler with an empty storeRetained. Counting only admitted publishes drifted up with
 * each such deletion and missed each such will, until an owner was refused with room to spare.
 */
export function trackRetainedStore(aedes: Aedes, index: RetainedIndex): void {
  const store = (aedes as unknown as { persistence: StoreWriter }).persistence;
  const write = store.storeRetained.bind(store);
  store.storeRetained = async (packet) => {
    await write(packet);
    index.load(packet.topic, Buffer.byteLength(packet.payload));
  };
}

interface StoreWriter {
  storeRetained(packet: { topic: string; payload: Buffer | string }): Promise<void>;
}

type Done = (err?: Error | null) => void;
interface PublishingClient {
  version?: number;
  conn: { write(b: Buffer): boolean };
}

/** The authorizePublish step for a retained PUBLISH the ACL allowed. */
export function quotaHook(index: RetainedIndex, onRefuse: (client: Client, reason: string) => void) {
  return (client: Client, packet: PublishPacket, done: Done) => {
    const decision = index.admit(packet.topic, packet.payload.length);
    if (decision.allow) return done(null);
    onRefuse(client, decision.reason);
    const c = client as unknown as PublishingClient;
    if (c.version !== 5) return done(new Error(decision.reason));
    (packet as PublishPacket & { _notAuthorized?: boolean })._notAuthorized = true;
    if (packet.qos > 0) {
      c.conn.write(publishAck(packet.qos as 1 | 2, packet.messageId ?? 0, QUOTA_EXCEEDED, decision.reason));
    }
    done(null);
  };
}
