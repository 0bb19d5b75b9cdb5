/**
 * MQTT reason codes and what they mean for the agent (issue 13: a refused PUBACK used to be "auth" whatever
 * the broker said). CONNACK codes: MQTT 3.1.1 §3.2.2.3 (return codes 1-5) and MQTT 5 §3.2.2.2; PUBACK
 * codes: MQTT 5 §3.4.2.1. Codes >= 0x80 are failures (MQTT 5 §2.4).
 */
import { type ErrorCode, ErrorCodes } from '../errors.js';

/** What the agent does about a refusal: `auth` and `refused` need a person; `busy` passes by itself. */
export type ReasonKind = 'auth' | 'protocol' | 'refused' | 'busy';

export interface Reason {
  code: number;
  meaning: string;
  kind: ReasonKind;
}

const CONNACK_V3: Record<number, Omit<Reason, 'code'>> = {
  1: { meaning: 'unacceptable protocol version', kind: 'protocol' },
  2: { meaning: 'client identifier rejected', kind: 'auth' },
  3: { meaning: 'server unavailable', kind: 'busy' },
  4: { meaning: 'bad user name or password', kind: 'auth' },
  5: { meaning: 'not authorized', kind: 'auth' },
};

/** MQTT 5 reason codes of CONNACK, PUBACK and DISCONNECT (one table: a code means the same in each). */
const V5: Record<number, Omit<Reason, 'code'>> = {
  128: { meaning: 'unspecified error', kind: 'refused' },
  129: { meaning: 'malformed packet', kind: 'refused' },
  130: { meaning: 'protocol error', kind: 'refused' },
  131: { meaning: 'implementation specific error', kind: 'refused' },
  132: { meaning: 'unsupported protocol version', kind: 'protocol' },
  133: { meaning: 'client identifier not valid', kind: 'auth' },
  134: { meaning: 'bad user name or password', kind: 'auth' },
  135: { meaning: 'not authorized', kind: 'auth' },
  136: { meaning: 'server unavailable', kind: 'busy' },
  137: { meaning: 'server busy', kind: 'busy' },
  138: { meaning: 'banned', kind: 'auth' },
  140: { meaning: 'bad authentication method', kind: 'auth' },
  144: { meaning: 'topic name invalid', kind: 'refused' },
  145: { meaning: 'packet identifier in use', kind: 'refused' },
  149: { meaning: 'packet too large', kind: 'refused' },
  151: { meaning: 'quota exceeded', kind: 'refused' },
  153: { meaning: 'payload format invalid', kind: 'refused' },
  154: { meaning: 'retain not supported', kind: 'refused' },
  155: { meaning: 'QoS not supported', kind: 'refused' },
  159: { meaning: 'connection rate exceeded', kind: 'busy' },
};

/** A CONNACK refusal; protocolVersion says which table the number belongs to. */
export function connackReason(code: number, protocolVersion: 4 | 5): Reason {
  const r = protocolVersion === 5 ? V5[code] : CONNACK_V3[code];
  return { code, ...(r ?? { meaning: `reason code ${code}`, kind: 'refused' }) };
}

/** A negative PUBACK (MQTT 5 only; 3.1.1 has none: the broker closes the connection instead). */
export function pubackReason(code: number): Reason {
  return { code, ...(V5[code] ?? { meaning: `reason code 0x${code.toString(16)}`, kind: 'refused' }) };
}

/** The stable error code a refusal is reported with. */
export function errorCodeFor(reason: Reason): ErrorCode {
  return reason.kind === 'auth' ? ErrorCodes.MQTT_AUTH : ErrorCodes.MQTT_REFUSED;
}

export function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}
