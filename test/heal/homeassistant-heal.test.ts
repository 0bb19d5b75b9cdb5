import { describe, expect, it } from 'vitest';
import { noCounts } from '../../src/heal/counts.js';
import { buildDiscovery } from '../../src/mqtt/homeassistant.js';

describe('Home Assistant: a diagnostic heal-count entity per target when --heal is on', () => {
  const target = { target: '10c4:ea60', vid: '10c4', pid: 'ea60' };
  it('is there with heal counts, diagnostic, reading heal.healed from the target state', () => {
    const cmps = buildDiscovery({}, { agent: 'pi' }, [{ ...target, heal: noCounts() }]).payload
      .cmps as Record<string, Record<string, unknown>>;
    const heals = Object.entries(cmps).find(([k]) => k.endsWith('10c4-ea60-heals'))?.[1];
    expect(heals).toMatchObject({
      p: 'sensor',
      entity_category: 'diagnostic',
      state_topic: 'replug/pi/target/10c4-ea60/state',
    });
    expect(String(heals?.value_template)).toContain('value_json.heal.healed');
  });
  it('is absent with --heal off', () => {
    const cmps = buildDiscovery({}, { agent: 'pi' }, [target]).payload.cmps as Record<string, unknown>;
    expect(Object.keys(cmps).some((k) => k.endsWith('-heals'))).toBe(false);
  });
});
