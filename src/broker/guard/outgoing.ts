/**
 * Each client's outgoing queue, bounded (issue 11: 3 clients that never read, 300 MB published: RSS 269 ->
 * 525 MB, none disconnected within 70 s). aedes writes every delivery into the socket and, when the socket
 * is full, holds the emitter's callback until 'drain' (or its 60 s drainTimeout); with the broker's ordered
 * publishes (aedes-fixes.ts, fix 1) one client that never reads then holds every publish of every client.
 *
 * Here, per client, from preConnect: past `outgoingBytes` queued for it a QoS 0 delivery is
 * dropped (counted); a QoS 1/2 delivery, or staying past it for `slowConsumerMs`, disconnects the client
 * (MQTT 5: DISCONNECT 0x97 with a Reason String). A QoS 0 delivery below the bound releases the emitter at
 * once instead of waiting for 'drain': the byte bound, not the publisher, is the back-pressure now.
 */
import type { Client } from 'aedes';

type Deliver = (
  packet: { qos: number; topic?: string; payload?: { length: number } },
  cb: () => void,
) => void;
interface DeliveringClient {
  deliver0: Deliver;
  deliverQoS: Deliver;
  conn: { writableLength?: number };
  version?: number;
  closed?: boolean;
  disconnect?(opts: { reasonCode: number; properties?: { reasonString?: string } }, done?: () => void): void;
  close(done?: () => void): void;
}

/** MQTT 5.0 §3.14.2.1 DISCONNECT reason code 0x97 Quota exceeded. */
export const QUOTA_EXCEEDED = 0x97;

export interface OutgoingBound {
  outgoingBytes: number;
  slowConsumerMs: number;
  now?: () => number;
  onDrop?: (client: Client) => void;
  onDisconnect?: (client: Client, reason: string) => void;
}

// This function is longer than 80 lines because it wraps both of aedes' delivery functions around one
// shared count of queued bytes and one slow-consumer timer.
export function boundOutgoing(client: Client, bound: OutgoingBound): void {
  const c = client as unknown as DeliveringClient;
  const now = bound.now ?? Date.now;
  const deliver0 = c.deliver0.bind(c);
  const deliverQoS = c.deliverQoS.bind(c);
  // Bytes handed to aedes whose write has not completed. aedes writes on the next tick (setImmediate)
  // and completes a write only once the socket has drained, so this counts what is scheduled as well as
  // what sits in the socket's buffer: checking writableLength alone let a burst of thousands of
  // deliveries through before the first of them was written.
  let queued = 0;
  let overSince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const end = (reason: string) => {
    if (timer) clearTimeout(timer);
    // A client gone meanwhile: the (unref'd) timer found nothing to do.
    if (ended || c.closed) return;
    ended = true;
    bound.onDisconnect?.(client, reason);
    if (c.version === 5 && c.disconnect) {
      c.disconnect({ reasonCode: QUOTA_EXCEEDED, properties: { reasonString: reason } });
    } else c.close();
  };
  const slowReason = () =>
    `slow consumer: over outgoing-bytes ${bound.outgoingBytes} for ${bound.slowConsumerMs} ms`;
  // Over the bound is sticky until the queue drains below half of it (hysteresis): otherwise one tiny
  // message that fits after a drained write would reset the slow-consumer clock on every burst.
  const over = (size: number): boolean => {
    if (overSince !== undefined) {
      if (queued <= bound.outgoingBytes / 2) {
        overSince = undefined;
        if (timer) clearTimeout(timer);
        return queued + size > bound.outgoingBytes ? over(size) : false;
      }
      if (now() - overSince >= bound.slowConsumerMs) end(slowReason());
      return true;
    }
    if (queued + size <= bound.outgoingBytes) return false;
    overSince = now();
    // Checked again even if nothing more is sent to it: a client that stopped reading is let go.
    timer = setTimeout(() => {
      timer = undefined;
      if (overSince !== undefined && queued > bound.outgoingBytes / 2) end(slowReason());
    }, bound.slowConsumerMs);
    timer.unref?.();
    return true;
  };
  const sizeOf = (packet: { topic?: string; payload?: { length: number } }) =>
    (packet.payload?.length ?? 0) + (packet.topic?.length ?? 0) + 8;
  c.deliver0 = (packet, cb) => {
    const size = sizeOf(packet);
    if (ended || over(size)) {
      bound.onDrop?.(client);
      return cb();
    }
    queued += size;
    deliver0(packet, () => {
      queued -= size;
    });
    cb();
  };
  c.deliverQoS = (packet, cb) => {
    if (packet.qos === 0) return c.deliver0(packet, cb);
    const size = sizeOf(packet);
    if (!ended && over(size))
      end(`slow consumer: a QoS ${packet.qos} message with outgoing-bytes ${bound.outgoingBytes} full`);
    if (ended) return cb();
    queued += size;
    deliverQoS(packet, () => {
      queued -= size;
      cb();
    });
  };
}
