/**
 * The agent's broker connection as a pure state machine (habit 3; issue 13: the publisher held it in six
 * booleans and counters). client.ts feeds it what MQTT.js reports and carries out what it returns: the
 * lines a user reads (one per outage, issue 3), and whether event delivery resumes or pauses.
 */
import type { ProtocolVersion } from './connect.js';

export type ConnectionState =
  /** Before the first CONNACK. `problem` is the last error seen on this attempt (for the outage line). */
  | { kind: 'connecting'; since: number; problem?: string }
  | { kind: 'up'; protocol: ProtocolVersion; since: number; reconnect: boolean }
  | { kind: 'down'; since: number; everUp: boolean; problem?: string }
  | { kind: 'stopped' };

export type ConnectionEvent =
  | { type: 'connack'; protocol: ProtocolVersion; at: number }
  | { type: 'close'; at: number }
  /** A transport or TLS error, already worded (tlsProblem); kept for the outage line. */
  | { type: 'problem'; text: string }
  | { type: 'stop' };

export interface Said {
  level: 'info' | 'warn';
  message: string;
  fields?: Record<string, unknown>;
}

export interface Step {
  state: ConnectionState;
  /** What to log, if anything. */
  say?: Said;
  /** Delivery: `resume` once up, `pause` once down. */
  delivery?: 'resume' | 'pause';
}

export const initialConnection = (now: number): ConnectionState => ({ kind: 'connecting', since: now });

/** `broker` is the redacted URL the lines name. */
export function connectionStep(state: ConnectionState, event: ConnectionEvent, broker: string): Step {
  if (state.kind === 'stopped') return { state };
  switch (event.type) {
    case 'stop':
      return { state: { kind: 'stopped' } };
    case 'problem':
      // One TLS reason per outage: before the first close it goes into the outage line; an outage that
      // began as a lost connection says it once when it first shows (issue 11).
      if (state.kind === 'up' || state.problem !== undefined) return { state };
      if (state.kind === 'connecting') return { state: { ...state, problem: event.text } };
      return {
        state: { ...state, problem: event.text },
        say: { level: 'warn', message: `broker ${broker}: ${event.text}; still retrying` },
      };
    case 'connack': {
      const reconnect = state.kind === 'down' && state.everUp;
      const up: ConnectionState = { kind: 'up', protocol: event.protocol, since: event.at, reconnect };
      if (state.kind === 'down')
        return {
          state: up,
          delivery: 'resume',
          say: {
            level: 'info',
            message: `broker ${broker} is back; delivering queued events`,
            fields: { downMs: event.at - state.since },
          },
        };
      return {
        state: up,
        delivery: 'resume',
        say: {
          level: 'info',
          message: `connected to broker ${broker} (MQTT ${event.protocol === 5 ? '5' : '3.1.1'})`,
          fields: { protocolVersion: event.protocol },
        },
      };
    }
    case 'close': {
      if (state.kind === 'down') return { state };
      const everUp = state.kind === 'up';
      const problem = state.kind === 'connecting' ? state.problem : undefined;
      const what = everUp ? 'lost the broker' : 'cannot reach the broker';
      return {
        state: { kind: 'down', since: event.at, everUp, ...(problem ? { problem } : {}) },
        delivery: 'pause',
        // Once per outage, not per retry (issue 3); the TLS reason when there is one (issue 11).
        say: {
          level: 'warn',
          message: `${what} ${broker}${problem ? ` (${problem})` : ''}; queueing events and retrying`,
        },
      };
    }
  }
}

/**
 * Node's TLS verification errors (tls.TLSSocket `authorizationError` codes, openssl's verify results) in
 * words a user acts on; undefined for anything that is not about TLS.
 */
export function tlsProblem(err: { code?: unknown; message?: string }): string | undefined {
  const code = typeof err.code === 'string' ? err.code : '';
  const verify = 'TLS: certificate verify failed';
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return "TLS: the broker's certificate has expired";
    case 'CERT_NOT_YET_VALID':
      return "TLS: the broker's certificate is not valid yet (is this host's clock right?)";
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS: hostname mismatch, the broker's certificate is for another name (${err.message ?? code})`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `${verify} (${code}): the broker's certificate is not signed by the CA the agent trusts`;
    case 'CERT_REVOKED':
    case 'CERT_REJECTED':
    case 'CERT_UNTRUSTED':
      return `${verify} (${code})`;
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
      return `TLS handshake failed (${code}): does this port speak TLS?`;
    default:
      return undefined;
  }
}
