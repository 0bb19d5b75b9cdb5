/**
 * Topic builders and parsers. The root `replug/<agent-id>/...` is a contract (DESIGN.md): dashboards,
 * `replug watch` and scripts subscribe to it. Agent ids are `[a-z0-9-]+` so they never contain MQTT
 * wildcards (`+`, `#`) or level separators (MQTT 3.1.1 §4.7.1).
 */
import { type TargetSpec, targetTopicKey } from '../usb/ids.js';

export const TOPIC_ROOT = 'replug';

export type TopicKind = 'status' | 'info' | 'devices' | 'event' | 'health' | 'target';

const AGENT_ID = /^[a-z0-9-]+$/;
/** targetTopicKey output: `1209-0001` or `1209-0001-<serial of [a-z0-9_]>`. */
const TARGET_TOPIC_KEY = /^[0-9a-f]{4}-[0-9a-f]{4}(-[a-z0-9_]+)?$/;

export function isValidAgentId(id: string): boolean {
  return AGENT_ID.test(id);
}

export function isValidTargetTopicKey(key: string): boolean {
  return TARGET_TOPIC_KEY.test(key);
}

export interface AgentTopics {
  readonly agent: string;
  readonly base: string;
  readonly status: string;
  readonly info: string;
  readonly devices: string;
  readonly event: string;
  readonly health: string;
  /** `replug/<agent>/target/<key>/state`, key from targetTopicKey (or a spec, converted). */
  target(key: string | TargetSpec): string;
  /** `replug/<agent>/#`: everything this agent publishes. */
  readonly all: string;
}

export function agentTopics(agent: string): AgentTopics {
  if (!isValidAgentId(agent)) {
    throw new TypeError(`agent id "${agent}" is not topic-safe; expected [a-z0-9-]+`);
  }
  const base = `${TOPIC_ROOT}/${agent}`;
  return {
    agent,
    base,
    status: `${base}/status`,
    info: `${base}/info`,
    devices: `${base}/devices`,
    event: `${base}/event`,
    health: `${base}/health`,
    target(key) {
      const k = typeof key === 'string' ? key : targetTopicKey(key);
      if (!isValidTargetTopicKey(k)) throw new TypeError(`target key "${k}" is not topic-safe`);
      return `${base}/target/${k}/state`;
    },
    all: `${base}/#`,
  };
}

/** Subscription filters for observers of many agents (`replug watch`). */
export const fleetFilters = {
  all: `${TOPIC_ROOT}/#`,
  status: `${TOPIC_ROOT}/+/status`,
  info: `${TOPIC_ROOT}/+/info`,
  devices: `${TOPIC_ROOT}/+/devices`,
  event: `${TOPIC_ROOT}/+/event`,
  health: `${TOPIC_ROOT}/+/health`,
  target: `${TOPIC_ROOT}/+/target/+/state`,
} as const;

export type ParsedTopic =
  | { agent: string; kind: Exclude<TopicKind, 'target'> }
  | { agent: string; kind: 'target'; targetKey: string };

/** The agent and kind of a replug topic; undefined for anything else (foreign or malformed topics). */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts[0] !== TOPIC_ROOT) return undefined;
  const agent = parts[1];
  if (agent === undefined || !isValidAgentId(agent)) return undefined;
  if (parts.length === 3) {
    const kind = parts[2];
    if (kind === 'status' || kind === 'info' || kind === 'devices' || kind === 'event' || kind === 'health') {
      return { agent, kind };
    }
    return undefined;
  }
  if (parts.length === 5 && parts[2] === 'target' && parts[4] === 'state') {
    const targetKey = parts[3] ?? '';
    return isValidTargetTopicKey(targetKey) ? { agent, kind: 'target', targetKey } : undefined;
  }
  return undefined;
}
