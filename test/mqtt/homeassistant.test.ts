import { describe, expect, it } from 'vitest';
import { buildDiscovery, haStatusTopic } from '../../src/mqtt/homeassistant.js';
import { snapshot } from './fixtures.js';

describe('Home Assistant device discovery', () => {
  const targets = [snapshot, { target: '1209:0002', vid: '1209', pid: '0002' }];

  it('one device config with origin, availability from status and a component per entity', () => {
    const m = buildDiscovery({}, { agent: 'pi-1', version: '0.1.0' }, targets);
    expect(m.topic).toBe('homeassistant/device/replug-pi-1/config');
    expect(m.payload).toMatchObject({
      dev: { ids: ['replug-pi-1'], name: 'replug pi-1', sw: '0.1.0' },
      o: { name: 'replug', sw: '0.1.0' },
      availability: [{ topic: 'replug/pi-1/status', value_template: '{{ value_json.state }}' }],
    });
    const cmps = m.payload.cmps as Record<string, { p: string; unique_id: string; state_topic: string }>;
    // 3 agent entities + 4 per target; each needs a platform and a unique id that matches its key
    expect(Object.keys(cmps)).toHaveLength(3 + 4 * 2);
    for (const [key, c] of Object.entries(cmps)) {
      expect(c.unique_id).toBe(key);
      expect(['sensor', 'binary_sensor']).toContain(c.p);
      expect(c.state_topic).toMatch(/^replug\/pi-1\//);
    }
    expect(cmps['replug-pi-1-1209-0002-up']?.state_topic).toBe('replug/pi-1/target/1209-0002/state');
  });

  it('honours a custom discovery prefix for the config and the birth topic', () => {
    expect(buildDiscovery({ prefix: 'ha' }, { agent: 'x' }, []).topic).toBe('ha/device/replug-x/config');
    expect(haStatusTopic({ prefix: 'ha' })).toBe('ha/status');
    expect(haStatusTopic({})).toBe('homeassistant/status');
  });
});
