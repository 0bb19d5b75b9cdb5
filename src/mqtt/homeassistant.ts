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

type TargetRef = Pick<TargetSnapshot, 'target' | 'vid' | 'pid' | 'serial' | 'heal'>;

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

type Components = Record<string, Record<string, unknown>>;

/** The agent's own entities: devices present, queued and dropped events. */
function agentComponents(agent: string): Components {
  const topics = agentTopics(agent);
  const id = haObjectId(agent);
  const sensor = (name: string, unique: string, topic: string, value: string, extra: object) => ({
    [`${id}-${unique}`]: {
      p: 'sensor',
      unique_id: `${id}-${unique}`,
      name,
      state_topic: topic,
      value_template: value,
      ...extra,
    },
  });
  return {
    ...sensor('USB devices', 'devices', topics.devices, '{{ value_json.count }}', {
      state_class: 'measurement',
    }),
    ...sensor('Queued events', 'queue', topics.health, '{{ value_json.queue.depth }}', {
      state_class: 'measurement',
      entity_category: 'diagnostic',
    }),
    ...sensor('Dropped events', 'dropped', topics.health, '{{ value_json.queue.dropped }}', {
      state_class: 'total_increasing',
      entity_category: 'diagnostic',
    }),
  };
}

/** One target's entities: session up, state, reconnects, reconnect p95, all read from its state topic. */
function targetComponents(agent: string, t: TargetRef): Components {
  const key = targetTopicKey(t);
  const base = `${haObjectId(agent)}-${key}`;
  const state_topic = agentTopics(agent).target(key);
  const entity = (suffix: string, p: string, name: string, value: string, extra: object = {}) => ({
    [`${base}-${suffix}`]: {
      p,
      unique_id: `${base}-${suffix}`,
      name: `${t.target} ${name}`,
      state_topic,
      value_template: value,
      ...extra,
    },
  });
  return {
    ...entity('up', 'binary_sensor', 'session', "{{ 'ON' if value_json.state == 'up' else 'OFF' }}", {
      device_class: 'connectivity',
    }),
    ...entity('state', 'sensor', 'state', '{{ value_json.state }}'),
    ...entity('reconnects', 'sensor', 'reconnects', '{{ value_json.reconnects.ok }}', {
      state_class: 'total_increasing',
    }),
    ...entity('p95', 'sensor', 'reconnect p95', '{{ value_json.reconnects.p95Ms }}', {
      unit_of_measurement: 'ms',
      device_class: 'duration',
      entity_category: 'diagnostic',
    }),
    // With --heal on (the state carries heal counts, issue 15): climbs that brought the session back.
    ...(t.heal
      ? entity(
          'heals',
          'sensor',
          'heals',
          '{{ value_json.heal.healed if value_json.heal is defined else 0 }}',
          {
            state_class: 'total_increasing',
            entity_category: 'diagnostic',
            json_attributes_topic: state_topic,
            json_attributes_template:
              '{{ value_json.heal | tojson if value_json.heal is defined else "{}" }}',
          },
        )
      : {}),
  };
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
  const id = haObjectId(agent.agent);
  const cmps: Components = agentComponents(agent.agent);
  for (const t of targets) Object.assign(cmps, targetComponents(agent.agent, t));
  for (const [component, platform] of Object.entries(removed)) cmps[component] ??= { p: platform };
  const sw = agent.version ? { sw: agent.version } : {};
  return {
    topic: discoveryTopic(options, agent.agent),
    payload: {
      dev: { ids: [id], name: `replug ${agent.agent}`, mf: 'replug', mdl: 'USB replug agent', ...sw },
      o: { name: 'replug', ...sw },
      availability: [
        {
          topic: agentTopics(agent.agent).status,
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
