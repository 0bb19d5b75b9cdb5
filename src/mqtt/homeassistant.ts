/**
 * Optional Home Assistant MQTT discovery (`--homeassistant`), device-based form (HA 2024.11+): one config
 * message per agent at `<prefix>/device/<object_id>/config` carrying the device (`dev`), the origin (`o`)
 * and every entity as a component (`cmps`, each with its platform `p` and a `unique_id`). Entities read
 * the agent's own retained topics through value templates, so nothing is published twice, and
 * availability follows `replug/<agent>/status` (the LWT). HA announces itself on `<prefix>/status` with
 * `online` (its birth message): discovery.ts re-sends the config then.
 *
 * Removal (issue 10): a component sent with only its platform (`{"p": "sensor"}`) is removed by HA; an
 * empty config removes the whole device. The agent sends those for what it announced before and no
 * longer has (src/agent/announced.ts remembers).
 */

import { targetTopicKey } from '../usb/ids.js';
import type { TargetSnapshot } from './payloads.js';
import { agentTopics } from './topics.js';

export interface HomeAssistantOptions {
  /** Discovery prefix; Home Assistant's default is `homeassistant`. */
  prefix?: string;
}

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

type TargetRef = Pick<TargetSnapshot, 'target' | 'vid' | 'pid' | 'serial'>;

export function haStatusTopic(options: HomeAssistantOptions): string {
  return `${options.prefix ?? 'homeassistant'}/status`;
}

/** HA object ids allow [a-zA-Z0-9_-]; agent ids are [a-z0-9-] already. */
export function haObjectId(agent: string): string {
  return `replug-${agent}`;
}

/** Component id -> platform of everything the config for these targets announces (what a removal names). */
export function discoveryComponents(agent: string, targets: readonly TargetRef[]): Record<string, string> {
  const cmps = buildDiscovery({}, { agent }, targets).payload.cmps as Record<string, { p: string }>;
  return Object.fromEntries(Object.entries(cmps).map(([id, c]) => [id, c.p]));
}

export function discoveryTopic(options: HomeAssistantOptions, agent: string): string {
  return `${options.prefix ?? 'homeassistant'}/device/${haObjectId(agent)}/config`;
}

/**
 * The device config. `removed`: component id -> platform of components to remove (sent as `{p}` only);
 * an id that is also a live component stays live.
 */
export function buildDiscovery(
  options: HomeAssistantOptions,
  agent: { agent: string; version?: string; host?: string },
  targets: readonly TargetRef[],
  removed: Readonly<Record<string, string>> = {},
): DiscoveryMessage {
  const topics = agentTopics(agent.agent);
  const id = haObjectId(agent.agent);
  const cmps: Record<string, Record<string, unknown>> = {
    [`${id}-devices`]: {
      p: 'sensor',
      unique_id: `${id}-devices`,
      name: 'USB devices',
      state_topic: topics.devices,
      value_template: '{{ value_json.count }}',
      state_class: 'measurement',
    },
    [`${id}-queue`]: {
      p: 'sensor',
      unique_id: `${id}-queue`,
      name: 'Queued events',
      state_topic: topics.health,
      value_template: '{{ value_json.queue.depth }}',
      state_class: 'measurement',
      entity_category: 'diagnostic',
    },
    [`${id}-dropped`]: {
      p: 'sensor',
      unique_id: `${id}-dropped`,
      name: 'Dropped events',
      state_topic: topics.health,
      value_template: '{{ value_json.queue.dropped }}',
      state_class: 'total_increasing',
      entity_category: 'diagnostic',
    },
  };
  for (const t of targets) {
    const key = targetTopicKey(t);
    const base = `${id}-${key}`;
    const stateTopic = topics.target(key);
    cmps[`${base}-up`] = {
      p: 'binary_sensor',
      unique_id: `${base}-up`,
      name: `${t.target} session`,
      device_class: 'connectivity',
      state_topic: stateTopic,
      value_template: "{{ 'ON' if value_json.state == 'up' else 'OFF' }}",
    };
    cmps[`${base}-state`] = {
      p: 'sensor',
      unique_id: `${base}-state`,
      name: `${t.target} state`,
      state_topic: stateTopic,
      value_template: '{{ value_json.state }}',
    };
    cmps[`${base}-reconnects`] = {
      p: 'sensor',
      unique_id: `${base}-reconnects`,
      name: `${t.target} reconnects`,
      state_topic: stateTopic,
      value_template: '{{ value_json.reconnects.ok }}',
      state_class: 'total_increasing',
    };
    cmps[`${base}-p95`] = {
      p: 'sensor',
      unique_id: `${base}-p95`,
      name: `${t.target} reconnect p95`,
      state_topic: stateTopic,
      value_template: '{{ value_json.reconnects.p95Ms }}',
      unit_of_measurement: 'ms',
      device_class: 'duration',
      entity_category: 'diagnostic',
    };
  }
  for (const [component, platform] of Object.entries(removed)) cmps[component] ??= { p: platform };
  return {
    topic: discoveryTopic(options, agent.agent),
    payload: {
      dev: {
        ids: [id],
        name: `replug ${agent.agent}`,
        mf: 'replug',
        mdl: 'USB replug agent',
        ...(agent.version ? { sw: agent.version } : {}),
      },
      o: { name: 'replug', ...(agent.version ? { sw: agent.version } : {}) },
      availability: [
        {
          topic: topics.status,
          value_template: '{{ value_json.state }}',
          payload_available: 'online',
          payload_not_available: 'offline',
        },
      ],
      qos: 1,
      cmps,
    },
  };
}
