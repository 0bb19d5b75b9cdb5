/**
 * Fixes replug carries on top of aedes 2.0.0-beta.1 (pinned exactly, issue 14). Each one answers a fault
 * reproduced against the published package; test/broker/aedes-upstream.test.ts keeps a minimal
 * reproduction of each on a bare Aedes, so dropping a fix (or an aedes upgrade that makes it moot) shows
 * up as a test result, not as a field report.
 *
 * 1. Ordered publishes (issue 10: wildcard subscribers lose retained updates; QoS 1 is reordered for
 *    persistent subscribers). aedes numbers a message (`brokerCounter`) when broker.publish() starts, then
 *    runs storeRetained / enqueueOffline (LevelDB writes) before it emits the message to subscribers, with
 *    every message's pipeline running concurrently. A retained `devices` update waits for its LevelDB put
 *    while the agent's next `event` (no retained write) overtakes it. Each client then drops, as a
 *    "duplicate", any message whose counter is not above the highest it has seen (client.js `dedupe`, meant
 *    for overlapping subscriptions): every subscriber that also got the event - `#`, `replug/#`,
 *    `replug/+/#` - silently loses the retained update; an exact-topic subscriber does not. The same
 *    overtaking among events (the offline-queue writes for persistent sessions finish out of order) drops
 *    events for everyone and, for persistent subscribers, the live write waits on another LevelDB round
 *    trip (outgoingUpdate) whose completions also come back out of order. Running broker.publish() one
 *    message at a time, in arrival order, makes emission order equal counter order and lets each message
 *    reach every subscriber's socket before the next starts: MQTT 3.1.1 §4.6 / 5.0 §4.6 ordered topics,
 *    and the dedupe's assumption holds again. The cost is measured in bench/latency.mjs.
 * 2. Names from the wire as plain-object keys (GHSA-52qw-whmv-87c5, fixed in aedes 1.2.0, absent from
 *    2.0.0-beta.1). A client id `constructor` or `toString` finds Object.prototype's member in
 *    `broker.clients`, "takes it over" and throws: CONNECT is never answered. A subscription to `toString`
 *    finds one in `client.subscriptions` and trips an assertion in mqemitter. The maps become
 *    null-prototype objects, as 1.2.0 made them.
 * 4. A resumed session's backlog first (MQTT 5.0 §4.6, 3.1.1 §4.6: messages to one client in order). On a
 *    reconnect aedes restores the subscriptions, then replays the queued messages from the store, and
 *    delivers new messages live while the replay runs: a Home Assistant coming back gets new events
 *    between old ones. Live deliveries to a client are held until its replay is done (aedes' own
 *    'clientReady'), then sent in order, minus those the replay already sent.
 * 3. Inbound QoS 2 (both fixed in aedes 1.2.0, absent from the beta): a client may leave any number of
 *    QoS 2 messages stored awaiting PUBREL (the store grows until memory runs out), and two PUBRELs for one
 *    packet in one read make the second delete reject outside any handler (an unhandled rejection per
 *    pair). The store is bounded per client (1.2.0's default, 1000), a PUBREL for a packet already
 *    released is answered without a rejection, and a clean session's stored QoS 2 packets go with it.
 */
import { Readable } from 'node:stream';
import type { Aedes, Client, PublishPacket } from 'aedes';

/** aedes 1.2.0's `maxInflightInbound` default: far above what a pipelining publisher reaches. */
export const MAX_INBOUND_QOS2 = 1000;

type PublishDone = (err?: Error) => void;
type Publish = (packet: PublishPacket, client: Client | null, done?: PublishDone) => void;

/** Fix 1: broker.publish() runs one message at a time, in the order the calls were made. */
export function orderPublishes(aedes: Aedes): void {
  const original = aedes.publish.bind(aedes) as unknown as Publish;
  const queue: { packet: PublishPacket; client: Client | null; done: PublishDone | undefined }[] = [];
  let running = false;
  const runNext = (): void => {
    const item = queue.shift();
    if (!item) {
      running = false;
      return;
    }
    running = true;
    original(item.packet, item.client, (err?: Error) => {
      // Start the next message before the caller's callback: a callback that publishes again (a will
      // after a failed write) queues behind it instead of re-entering.
      setImmediate(runNext);
      item.done?.(err);
    });
  };
  const ordered = (packet: PublishPacket, client?: Client | null | PublishDone, done?: PublishDone) => {
    // aedes' own signature: publish(packet, done) for the broker's $SYS publishes.
    if (typeof client === 'function') queue.push({ packet, client: null, done: client });
    else queue.push({ packet, client: client ?? null, done });
    if (!running) runNext();
  };
  (aedes as unknown as { publish: typeof ordered }).publish = ordered;
}

/** Fix 2, broker side: call right after createBroker(), before any client connects. */
export function nullPrototypeBrokerMaps(aedes: Aedes): void {
  const a = aedes as unknown as { clients: object; brokers: object };
  a.clients = Object.assign(Object.create(null), a.clients);
  a.brokers = Object.assign(Object.create(null), a.brokers);
}

/** Fix 2, client side: call from preConnect, before the client's first SUBSCRIBE or delivery. */
export function nullPrototypeClientMaps(client: Client): void {
  const c = client as unknown as { subscriptions: object; duplicates: object };
  c.subscriptions = Object.assign(Object.create(null), c.subscriptions);
  c.duplicates = Object.assign(Object.create(null), c.duplicates);
}

type HeldPacket = PublishPacket & { brokerId?: string; brokerCounter?: number };
type Deliver = (packet: HeldPacket, cb: () => void) => void;
interface Deliveries {
  deliver0: Deliver;
  deliverQoS: Deliver;
  connected: boolean;
  id: string;
}
interface OutgoingStore {
  outgoingStream(client: Client): NodeJS.ReadableStream & AsyncIterable<unknown>;
}

const key = (p: { brokerId?: string; brokerCounter?: number }) => `${p.brokerId}:${p.brokerCounter}`;

/**
 * Fix 4: call right after createBroker(); returns the per-client part, to call from preConnect (before
 * restoreSubs hands the client's deliver functions to the emitter).
 */
export function backlogFirst(aedes: Aedes): (client: Client) => void {
  const store = (aedes as unknown as { persistence: OutgoingStore }).persistence;
  const stream = store.outgoingStream.bind(store);
  const replayed = new Map<string, Set<string>>();
  store.outgoingStream = (client) => {
    const sent = new Set<string>();
    replayed.set(client.id, sent);
    const source = stream(client);
    // Tap what the replay sends, without taking the stream out of aedes' pipeline (backpressure intact).
    async function* tap() {
      for await (const packet of source) {
        sent.add(key(packet as { brokerId?: string; brokerCounter?: number }));
        yield packet;
      }
    }
    return Readable.from(tap()) as never;
  };
  // Per client, deliveries waiting for the replay to end, then sent one after the other: a held message
  // must reach the socket before a newer live one (outgoingUpdate is an async store round trip).
  const held = new Map<Client, { queue: { packet: HeldPacket; live: Deliver }[]; draining: boolean }>();
  const drain = (client: Client): void => {
    const state = held.get(client);
    if (!state || state.draining) return;
    state.draining = true;
    const sent = replayed.get(client.id);
    const next = (): void => {
      let item = state.queue.shift();
      while (item && sent?.has(key(item.packet))) item = state.queue.shift();
      if (!item) {
        held.delete(client);
        replayed.delete(client.id);
        return;
      }
      item.live(item.packet, next);
    };
    next();
  };
  aedes.on('clientReady', drain);
  aedes.on('clientDisconnect', (client) => {
    // What was held for a persistent session is in its queue for the next connect; QoS 0 may be lost.
    held.delete(client);
    replayed.delete(client.id);
  });
  return (client) => {
    const c = client as unknown as Deliveries;
    const hold = (deliver: Deliver): Deliver => {
      const live = deliver.bind(c);
      return (packet, cb) => {
        if (c.connected && !held.has(client)) return live(packet, cb);
        const state = held.get(client) ?? { queue: [], draining: false };
        held.set(client, state);
        state.queue.push({ packet, live });
        // The emitter's callback now: one client's replay must not stall the broker's ordered publishes.
        cb();
        if (c.connected) drain(client);
      };
    };
    c.deliver0 = hold(c.deliver0);
    c.deliverQoS = hold(c.deliverQoS);
  };
}

interface IncomingStore {
  incomingStorePacket(client: Client, packet: PublishPacket): Promise<void>;
  incomingDelPacket(client: Client, packet: { messageId?: number }): Promise<void>;
}

/**
 * Fix 3: bound and release the inbound QoS 2 store; call right after createBroker(). `onLimit` is told
 * of each refused packet (the connection is then closed by aedes), for the broker's log.
 */
export function boundInboundQoS2(
  aedes: Aedes,
  onLimit: (client: Client, limit: number) => void = () => undefined,
  limit = MAX_INBOUND_QOS2,
): void {
  const store = (aedes as unknown as { persistence: IncomingStore }).persistence;
  const storePacket = store.incomingStorePacket.bind(store);
  const delPacket = store.incomingDelPacket.bind(store);
  // By client id, as the store keys them: a persistent session's packets outlive its connection.
  const awaiting = new Map<string, Set<number>>();

  store.incomingStorePacket = async (client, packet) => {
    const ids = awaiting.get(client.id) ?? new Set<number>();
    awaiting.set(client.id, ids);
    const id = packet.messageId ?? 0;
    // A DUP retransmission of a stored packet keeps its slot; a new id needs a free one. Reserved before
    // the await: aedes dispatches a whole socket read concurrently.
    if (!ids.has(id) && ids.size >= limit) {
      onLimit(client, limit);
      throw new Error(`more than ${limit} inbound QoS 2 messages awaiting PUBREL`);
    }
    ids.add(id);
    try {
      await storePacket(client, packet);
    } catch (err) {
      ids.delete(id);
      throw err;
    }
  };
  store.incomingDelPacket = async (client, packet) => {
    try {
      await delPacket(client, packet);
      awaiting.get(client.id)?.delete(packet.messageId ?? 0);
    } catch {
      // Already released by a PUBREL earlier in the same read: PUBCOMP is still owed, nothing is lost.
    }
  };
  aedes.on('clientDisconnect', (client) => {
    const ids = awaiting.get(client.id);
    // [MQTT-3.1.2-6] a clean session (v5: session expiry 0) ends with the connection, and so do its
    // unreleased QoS 2 packets; a persistent session keeps them for the PUBREL after reconnecting.
    if (!ids || !client.clean) return;
    awaiting.delete(client.id);
    for (const messageId of ids) void delPacket(client, { messageId }).catch(() => undefined);
  });
}
