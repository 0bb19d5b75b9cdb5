import { describe, expect, it } from 'vitest';
import {
  authorizePublish,
  authorizeSubscribe,
  filterWithin,
  type Principal,
  topicMatches,
} from '../../src/broker/acl.js';

const agentA: Principal = { kind: 'user', username: 'a', role: 'agent' };
const observer: Principal = { kind: 'user', username: 'dash', role: 'observer' };
const anonymous: Principal = { kind: 'anonymous' };

describe('topicMatches (MQTT 3.1.1 §4.7)', () => {
  it.each([
    ['replug/a/#', 'replug/a/status', true],
    ['replug/a/#', 'replug/a', true], // §4.7.1.2: '#' also matches the parent level
    ['replug/a/#', 'replug/ab/status', false],
    ['replug/+/status', 'replug/a/status', true],
    ['replug/+/status', 'replug/a/b/status', false],
    ['homeassistant/status', 'homeassistant/status', true],
    ['homeassistant/status', 'homeassistant/status/x', false],
    ['#', '$SYS/broker/uptime', false], // §4.7.2
    ['+/broker', '$SYS/broker', false],
    ['$SYS/#', '$SYS/x', true],
  ])('%s vs %s -> %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('filterWithin', () => {
  it.each([
    ['replug/a/#', 'replug/a/#', true],
    ['replug/a/status', 'replug/a/#', true],
    ['replug/a/+/state', 'replug/a/#', true],
    ['replug/#', 'replug/a/#', false],
    ['replug/+/status', 'replug/a/#', false],
    ['#', 'replug/a/#', false],
    ['replug/a', 'replug/a/#', true],
    ['replug/+/x', 'replug/+/x', true],
    ['replug/a/x', 'replug/+/x', true],
    ['replug/#', '#', true],
    ['$SYS/#', '#', false],
    ['homeassistant/status', 'homeassistant/status', true],
    ['homeassistant/#', 'homeassistant/status', false],
  ])('%s within %s -> %s', (inner, outer, expected) => {
    expect(filterWithin(inner, outer)).toBe(expected);
  });
});

describe('authorizePublish', () => {
  it('lets an agent publish under its own root only', () => {
    expect(authorizePublish(agentA, 'replug/a/status')).toEqual({ allow: true });
    expect(authorizePublish(agentA, 'replug/a/target/1d6b:0002/state')).toEqual({ allow: true });
    const refused = authorizePublish(agentA, 'replug/b/status');
    expect(refused.allow).toBe(false);
    expect(authorizePublish(agentA, 'replug/ab/status').allow).toBe(false);
    expect(authorizePublish(agentA, 'homeassistant/status').allow).toBe(false);
    // Its own Home Assistant discovery config (--homeassistant), and nobody else's.
    expect(authorizePublish(agentA, 'homeassistant/device/replug-a/config').allow).toBe(true);
    expect(authorizePublish(agentA, 'homeassistant/device/replug-b/config').allow).toBe(false);
    expect(authorizePublish(agentA, 'homeassistant/device/replug-a/other').allow).toBe(false);
  });
  it('refuses every publish by an observer', () => {
    const d = authorizePublish(observer, 'replug/dash/status');
    expect(d).toEqual({ allow: false, reason: 'observers may not publish' });
  });
  it('gives anonymous (loopback) clients full access but keeps $SYS reserved', () => {
    expect(authorizePublish(anonymous, 'replug/anything/at/all')).toEqual({ allow: true });
    expect(authorizePublish(anonymous, '$SYS/fake').allow).toBe(false);
  });
  it('takes extra agent patterns with %u, e.g. for Home Assistant discovery', () => {
    const acl = { agentPublish: ['replug/%u/#', 'homeassistant/+/replug-%u/#'] };
    expect(authorizePublish(agentA, 'homeassistant/sensor/replug-a/config', acl).allow).toBe(true);
    expect(authorizePublish(agentA, 'homeassistant/sensor/replug-b/config', acl).allow).toBe(false);
  });
});

describe('authorizeSubscribe', () => {
  it('lets an agent subscribe to its own root and homeassistant/status, nothing wider', () => {
    expect(authorizeSubscribe(agentA, 'replug/a/#').allow).toBe(true);
    expect(authorizeSubscribe(agentA, 'homeassistant/status').allow).toBe(true);
    expect(authorizeSubscribe(agentA, 'replug/#').allow).toBe(false);
    expect(authorizeSubscribe(agentA, 'replug/b/#').allow).toBe(false);
    expect(authorizeSubscribe(agentA, '#').allow).toBe(false);
  });
  it('lets an observer subscribe to everything but $SYS by default', () => {
    expect(authorizeSubscribe(observer, '#').allow).toBe(true);
    expect(authorizeSubscribe(observer, 'replug/+/status').allow).toBe(true);
    expect(authorizeSubscribe(observer, '$SYS/#').allow).toBe(false);
    expect(authorizeSubscribe(observer, '$SYS/#', { observerSubscribe: ['#', '$SYS/#'] }).allow).toBe(true);
  });
});
