import { describe, expect, it } from 'vitest';
import { agentTopics, fleetFilters, parseTopic } from '../../src/mqtt/topics.js';
import { targetTopicKey } from '../../src/usb/ids.js';

describe('agentTopics', () => {
  it('builds every topic under replug/<agent>/', () => {
    const t = agentTopics('pi-kitchen');
    expect([t.status, t.info, t.devices, t.event, t.health, t.all]).toEqual([
      'replug/pi-kitchen/status',
      'replug/pi-kitchen/info',
      'replug/pi-kitchen/devices',
      'replug/pi-kitchen/event',
      'replug/pi-kitchen/health',
      'replug/pi-kitchen/#',
    ]);
    expect(t.target('1209-0001')).toBe('replug/pi-kitchen/target/1209-0001/state');
    expect(t.target({ vid: '1209', pid: '0001', serial: 'A/B+#C' })).toBe(
      'replug/pi-kitchen/target/1209-0001-a_b_c/state',
    );
  });

  it('refuses agent ids and target keys that could break topic levels or act as wildcards', () => {
    for (const bad of ['Pi', 'a/b', 'a+', '#', '', 'a b'])
      expect(() => agentTopics(bad)).toThrow(/topic-safe/);
    expect(() => agentTopics('ok').target('1209:0001')).toThrow(/topic-safe/);
    expect(() => agentTopics('ok').target('1209-0001/x')).toThrow(/topic-safe/);
  });
});

describe('parseTopic', () => {
  it('round-trips every builder', () => {
    const t = agentTopics('a-1');
    expect(parseTopic(t.status)).toEqual({ agent: 'a-1', kind: 'status' });
    expect(parseTopic(t.health)).toEqual({ agent: 'a-1', kind: 'health' });
    const key = targetTopicKey({ vid: '1209', pid: '0001', serial: 'SN-1' });
    expect(parseTopic(t.target(key))).toEqual({ agent: 'a-1', kind: 'target', targetKey: '1209-0001-sn_1' });
  });

  it('rejects foreign and malformed topics', () => {
    for (const topic of [
      'homeassistant/status',
      'replug/A/status',
      'replug/a/unknown',
      'replug/a/target/1209-0001',
      'replug/a/target/zz/state',
      'replug/a/status/extra',
      'replug',
    ]) {
      expect(parseTopic(topic), topic).toBeUndefined();
    }
  });

  it('offers fleet filters with single-level wildcards at the agent level', () => {
    expect(fleetFilters.target).toBe('replug/+/target/+/state');
    expect(fleetFilters.status).toBe('replug/+/status');
  });
});
