/**
 * What a socket must pass before aedes parses it (issue 11, "before authentication").
 *
 * aedes 2.0.0-beta.1 has a `maximumPacketSize` (used for packet-bytes) but applies it only to whole
 * frames of a connected client's protocol, and a socket without CONNECT costs nothing to hold: before this
 * gate 2 sockets announcing 150 MB CONNECTs took `replug broker` from 218 to 498 MB. So the gate reads the
 * first fixed header itself (type + Remaining Length, MQTT 3.1.1 §2.2 / 5.0 §2.1.4: at most 5 bytes), refuses
 * anything that is not a CONNECT of at most connect-bytes, puts the bytes back (`unshift`) and only then
 * hands the socket to aedes. It also bounds the sockets that have no CONNACK yet: past `connecting`, the
 * oldest is closed, so idle sockets cannot starve a login (a newcomer always gets its turn). The oldest
 * *idle* one goes first: a socket whose CONNECT header passed is a login being authenticated (a password
 * hash can take a while on a loaded Pi), and closing it for a flood of sockets that never sent a byte
 * refused the one client doing real work (the abuse suite's login probe, 1,000 idle sockets, under load).
 */
import type { Duplex } from 'node:stream';

/** MQTT control packet type 1 in the high nibble, flags 0 ([MQTT-2.2.2-2]). */
const CONNECT_BYTE = 0x10;

export type HeaderVerdict =
  | { kind: 'more' }
  | { kind: 'ok'; remaining: number }
  | { kind: 'refuse'; reason: string };

/** Reads a fixed header from the first bytes of a stream: pure, unit-tested. */
export function readConnectHeader(buf: Buffer, maxConnectBytes: number): HeaderVerdict {
  if (buf.length === 0) return { kind: 'more' };
  if (buf[0] !== CONNECT_BYTE) return { kind: 'refuse', reason: 'first packet is not CONNECT' };
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    const byte = buf[i];
    if (byte === undefined) return { kind: 'more' };
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      if (value > maxConnectBytes) {
        return {
          kind: 'refuse',
          reason: `CONNECT of ${value} bytes is over connect-bytes ${maxConnectBytes}`,
        };
      }
      return { kind: 'ok', remaining: value };
    }
    multiplier *= 128;
  }
  return { kind: 'refuse', reason: 'malformed Remaining Length' };
}

export interface GateOptions {
  maxConnectBytes: number;
  /** Sockets without CONNACK at once; past it the oldest is closed. */
  maxConnecting: number;
  /** A socket that has not sent a whole fixed header by then is closed (aedes times the rest of CONNECT). */
  connectTimeoutMs: number;
  /** Told once per refused socket (the broker logs at debug, a flood must not flood the log). */
  onRefuse?: (socket: Duplex, reason: string) => void;
}

export interface Gate {
  /** Takes a fresh socket; calls `pass(socket)` once its first header is acceptable. */
  admit(socket: Duplex, pass: (socket: Duplex) => void): void;
  /** The socket got its CONNACK (or closed): it no longer counts as connecting. */
  settled(socket: Duplex): void;
  /** Sockets without CONNACK right now. */
  readonly connecting: number;
  /** Counters for bench/abuse.mjs and the tests. */
  readonly refused: { header: number; evicted: number };
}

export function createGate(options: GateOptions): Gate {
  // Insertion order is age order: the first key is the oldest socket still connecting. `idle`: those
  // without a whole CONNECT header yet; the rest of `pending` are being authenticated by aedes.
  const pending = new Set<Duplex>();
  const idle = new Set<Duplex>();
  const refused = { header: 0, evicted: 0 };
  const refuse = (socket: Duplex, reason: string) => {
    options.onRefuse?.(socket, reason);
    pending.delete(socket);
    idle.delete(socket);
    socket.destroy();
  };
  const settled = (socket: Duplex) => {
    pending.delete(socket);
    idle.delete(socket);
  };
  const admit = (socket: Duplex, pass: (socket: Duplex) => void) => {
    if (pending.size >= options.maxConnecting) {
      const oldest = (idle.values().next().value ?? pending.values().next().value) as Duplex;
      refused.evicted++;
      refuse(oldest, `more than ${options.maxConnecting} sockets without CONNACK: closed the oldest`);
    }
    pending.add(socket);
    idle.add(socket);
    const timer = setTimeout(() => refuse(socket, 'no CONNECT in time'), options.connectTimeoutMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      settled(socket);
    });
    let head: Buffer = Buffer.alloc(0);
    const onReadable = () => {
      let chunk: Buffer | null = socket.read() as Buffer | null;
      while (chunk !== null) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        chunk = socket.read() as Buffer | null;
      }
      const verdict = readConnectHeader(head, options.maxConnectBytes);
      if (verdict.kind === 'more') return;
      socket.off('readable', onReadable);
      clearTimeout(timer);
      if (verdict.kind === 'refuse') {
        refused.header++;
        return refuse(socket, verdict.reason);
      }
      idle.delete(socket);
      // Back into the stream's buffer: aedes' own 'readable' listener finds it there.
      socket.unshift(head);
      pass(socket);
    };
    socket.on('readable', onReadable);
  };
  return {
    admit,
    settled,
    get connecting() {
      return pending.size;
    },
    refused,
  };
}
