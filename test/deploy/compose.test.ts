/**
 * deploy/compose.yaml: valid against the Compose Specification schema (the copy dclint ships, current with
 * the spec), and the comparison it promises: one agent per runtime, each with its own id and label, all on
 * one broker, with the mounts and cgroup rule that make replug see replugs (moby/moby#35359).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { readYaml } from './support.js';

type Service = {
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  device_cgroup_rules?: string[];
  network_mode?: string;
  privileged?: boolean;
  command?: string[];
  devices?: unknown[];
  user?: string;
  group_add?: string[];
};
type ComposeFile = { services: Record<string, Service> };

function composeSchemaValidator() {
  const require = createRequire(import.meta.url);
  const file = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
  // The spec's `$schema` names draft-07 by an https URL ajv does not register; ajv's default IS draft-07.
  // strict: false because the spec is written for lenient validators (keywords without `type` beside them).
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

const compose = readYaml('deploy/compose.yaml') as ComposeFile;
const services = compose.services;
const agents = Object.entries(services).filter(([, s]) => s.command?.[0] === 'agent');
const byProfile = (profile: string) => agents.find(([, s]) => s.profiles?.includes(profile))?.[1];

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose Specification schema', () => {
    const validate = composeSchemaValidator();
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // and the validator does catch mistakes (a typo'd key)
    const typo = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
    typo.services.broker!.device_cgroup_rule = ['c 189:* rmw'];
    expect(validate(typo)).toBe(false);
  });

  it('has the container, container-hostnet and privileged profiles, each with one agent', () => {
    for (const profile of ['container', 'container-hostnet', 'container-privileged']) {
      expect(
        agents.filter(([, s]) => s.profiles?.includes(profile)),
        profile,
      ).toHaveLength(1);
    }
  });

  it('gives every agent a distinct, valid agent id and runtime label', () => {
    const ids = agents.map(([, s]) => s.environment?.REPLUG_ID ?? '');
    const labels = agents.map(([, s]) => s.environment?.REPLUG_RUNTIME_LABEL ?? '');
    expect(new Set(ids).size).toBe(agents.length);
    expect(new Set(labels).size).toBe(agents.length);
    // ${REPLUG_HOST:-pi} interpolates to a [a-z0-9-]+ prefix; the rest must already fit the contract.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, not a JS template
    for (const id of ids) expect(id.replace('${REPLUG_HOST:-pi}', 'pi')).toMatch(/^[a-z0-9-]+$/);
    expect(labels).toEqual(expect.arrayContaining(['container', 'container-hostnet']));
  });

  it('container: own network, /dev/bus/usb bind-mounted, cgroup rule for usb_device nodes', () => {
    const agent = byProfile('container')!;
    expect(agent.network_mode).toBeUndefined();
    expect(agent.volumes).toContain('/dev/bus/usb:/dev/bus/usb');
    expect(agent.device_cgroup_rules).toEqual(['c 189:* rmw']);
    // `devices:` snapshots single nodes, which break on replug (new bus address)
    expect(agent.devices).toBeUndefined();
    expect(agent.privileged).toBeFalsy();
    expect(agent.environment?.REPLUG_MQTT_URL).toBe('mqtt://broker:1883');
  });

  it('container-privileged: the privileged variant still bind-mounts /dev/bus/usb', () => {
    const agent = byProfile('container-privileged')!;
    expect(agent.privileged).toBe(true);
    expect(agent.volumes).toContain('/dev/bus/usb:/dev/bus/usb');
  });

  it('container-hostnet: host network and /run/udev read-only, broker on the host loopback', () => {
    const agent = byProfile('container-hostnet')!;
    expect(agent.network_mode).toBe('host');
    expect(agent.volumes).toContain('/run/udev:/run/udev:ro');
    expect(agent.volumes).toContain('/dev/bus/usb:/dev/bus/usb');
    expect(agent.device_cgroup_rules).toEqual(['c 189:* rmw']);
    expect(agent.environment?.REPLUG_MQTT_URL).toMatch(/^mqtt:\/\/127\.0\.0\.1:/);
  });

  it('agents run as the image user with the USB group added, not as root', () => {
    for (const [name, agent] of agents) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, not a JS template
      expect(agent.user, name).toBe('${REPLUG_USER:-10001:10001}');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, not a JS template
      expect(agent.group_add, name).toEqual(['${REPLUG_USB_GID:-46}']);
    }
  });

  it('runs a broker for everyone (no profile) published on the host loopback only', () => {
    const broker = services.broker as Service & { ports?: string[] };
    expect(broker.command?.[0]).toBe('broker');
    expect(broker.profiles).toBeUndefined();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose interpolation, not a JS template
    expect(broker.ports).toEqual(['127.0.0.1:${REPLUG_BROKER_PORT:-1883}:1883']);
  });

  it('has a watch service comparing runtimes, enabled with any agent profile', () => {
    const watch = services.watch!;
    expect(watch.command).toEqual(['watch', '--mqtt', 'mqtt://broker:1883', '--compare']);
    expect(watch.profiles).toEqual(expect.arrayContaining(['watch', 'container', 'container-hostnet']));
  });
});
