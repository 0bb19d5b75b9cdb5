/**
 * Each client's outgoing queue, bounded (issue 11: 3 clients that never read, 300 MB published: RSS 269 ->
 * 525 MB, none disconnected within 70 s). aedes writes every delivery into the socket and, when the socket
 * is full, holds the emitter's callback until 'drain' (or its 60 s drainTimeout); with the broker's ordered
 * publishes (aedes-fixes.ts, fix 1) one client that never reads then holds every publish of every client.
 *
 * Here, per client, from preConnect: past `outgoingBytes` in the socket's buffer a QoS 0 delivery is
 * dropped (counted); a QoS 1/2 delivery, or staying past it for `slowConsumerMs`, disconnects the client
 * (MQTT 5: DISCONNECT 0x97 with a Reason String). A QoS 0 delivery below the bound releases the emitter at
 * once instead of waiting for 'drain': the byte bound, not the publisher, is the back-pressure now.
 */
import type { Client } from 'aedes';

type Deliver = (packet: { qos: number }, cb: () => void) => void;
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

export function boundOutgoing(client: Client, bound: OutgoingBound): void {
  const c = client as unknown as DeliveringClient;
  const now = bound.now ?? Date.now;
  const deliver0 = c.deliver0.bind(c);
  const deliverQoS = c.deliverQoS.bind(c);
  let overSince: number | undefined;
  let ended = false;
  const end = (reason: string) => {
    if (ended || c.closed) return;
    ended = true;
    bound.onDisconnect?.(client, reason);
    if (c.version === 5 && c.disconnect) {
      c.disconnect({ reasonCode: QUOTA_EXCEEDED, properties: { reasonString: reason } });
    } else c.close();
  };
  const over = (): boolean => {
    if ((c.conn.writableLength ?? 0) <= bound.outgoingBytes) {
      overSince = undefined;
      return false;
    }
    overSince ??= now();
    if (now() - overSince >= bound.slowConsumerMs) {
      end(`slow consumer: over outgoing-bytes ${bound.outgoingBytes} for ${bound.slowConsumerMs} ms`);
    }
    return true;
  };
  c.deliver0 = (packet, cb) => {
    if (ended || over()) {
      bound.onDrop?.(client);
      return cb();
    }
    deliver0(packet, () => undefined);
    cb();
  };
  c.deliverQoS = (packet, cb) => {
    if (packet.qos === 0) return c.deliver0(packet, cb);
    if (!ended && over())
      end(`slow consumer: a QoS ${packet.qos} message with outgoing-bytes ${bound.outgoingBytes} full`);
    if (ended) return cb();
    deliverQoS(packet, cb);
  };
}
