/**
 * The few packets the guard answers itself, because aedes 2.0.0-beta.1 fixes their contents: a refused
 * CONNACK carries no Reason String (an agent refused for its id only read "Not authorized"), and an
 * authorizePublish refusal is always PUBACK 0x87, where a full retained quota is 0x97 Quota exceeded.
 * Encoded by hand (MQTT 5.0 §3.2 CONNACK, §3.4 PUBACK, §3.5 PUBREC; 3.1.1 §3.2): a dozen bytes, no
 * dependency on aedes' private writer.
 */

/** MQTT 5.0 §2.2.2.2 property identifier 0x1F: Reason String (UTF-8 string). */
const REASON_STRING = 0x1f;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
  return out;
}

/** Properties holding one Reason String, cut to keep the packet small (the client only prints it). */
function reasonProperties(reason: string | undefined): Buffer {
  if (!reason) return Buffer.from([0]);
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 512) text = text.subarray(0, 512);
  const body = Buffer.concat([Buffer.from([REASON_STRING, text.length >> 8, text.length & 0xff]), text]);
  return Buffer.concat([Buffer.from(varint(body.length)), body]);
}

function frame(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...varint(body.length)]), body]);
}

/** A refusing CONNACK: v3/v4 return code (1-5), or for v5 a reason code and Reason String. */
export function refusedConnack(
  version: number,
  returnCode: number,
  reasonCode: number,
  reason?: string,
): Buffer {
  if (version !== 5) return frame(0x20, Buffer.from([0, returnCode]));
  return frame(0x20, Buffer.concat([Buffer.from([0, reasonCode]), reasonProperties(reason)]));
}

/** A v5 PUBACK (QoS 1) or PUBREC (QoS 2) with a reason code and Reason String. */
export function publishAck(qos: 1 | 2, messageId: number, reasonCode: number, reason?: string): Buffer {
  const head = Buffer.from([messageId >> 8, messageId & 0xff, reasonCode]);
  return frame(qos === 1 ? 0x40 : 0x50, Buffer.concat([head, reasonProperties(reason)]));
}
