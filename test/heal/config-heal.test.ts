import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/config/agent.js';
import { actionsFor } from '../../src/config/heal.js';
import { ConfigError } from '../../src/errors.js';

const load = (argv: string[], env: Record<string, string> = {}) =>
  loadAgentConfig(argv, env, { hostname: 'h' });

describe('heal and action options', () => {
  it('--heal is off by default; steps parse in any order; all and off', () => {
    expect(load([]).heal.steps).toEqual([]);
    expect(load(['--heal', 'rebind,reset']).heal.steps).toEqual(['rebind', 'reset']);
    expect(load(['--heal', 'all']).heal.steps).toEqual(['reset', 'reauthorize', 'port-power', 'rebind']);
    expect(load([], { REPLUG_HEAL: 'off' }).heal.steps).toEqual([]);
    expect(load(['--heal', 'reset', '--heal-port-shared', '--heal-after', '5000']).heal).toMatchObject({
      portShared: true,
      afterMs: 5000,
    });
  });

  it('a bad step or container name is one clear problem each', () => {
    let err: unknown;
    try {
      load(['--heal', 'reset,reboot', '--restart-container', 'a/b']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(
      problems.some((p) => p.includes('"reboot"') && p.includes('reset,reauthorize,port-power,rebind')),
    ).toBe(true);
    expect(problems.some((p) => p.includes('"a/b" is not a container name'))).toBe(true);
  });

  it('actions before any --target are global; after one, that target only', () => {
    const c = load([
      '--on-up',
      'echo all',
      '--target',
      '10c4:ea60',
      '--on-up',
      'echo zigbee',
      '--restart-container',
      'zigbee2mqtt',
      '--target',
      '1a6e:089a/18d1:9302',
      '--on-down',
      'echo coral gone',
      '--restart-container',
      'frigate',
    ]);
    expect(actionsFor(c.actions, '10c4:ea60')).toEqual({
      onUp: ['echo all', 'echo zigbee'],
      onDown: [],
      onHeal: [],
      restartContainers: ['zigbee2mqtt'],
    });
    expect(actionsFor(c.actions, '1a6e:089a')).toEqual({
      onUp: ['echo all'],
      onDown: ['echo coral gone'],
      onHeal: [],
      restartContainers: ['frigate'],
    });
    expect(c.actions.dockerSocket).toBe('/var/run/docker.sock');
  });
});
