import { describe, expect, it } from 'vitest';
import { FleetIntake } from '../../src/fleet/intake.js';
import type { FleetMessage } from '../../src/fleet/types.js';
import { refusedFilters } from '../../src/mqtt/subscriber.js';

const m = (agent: string, n: number, bytes = 10): FleetMessage => ({
  broker: 'b',
  topic: `replug/${agent}/event`,
  payload: Buffer.alloc(bytes, n % 256),
  retained: false,
  receivedAt: n,
});

function setup(accept: (msg: FleetMessage) => boolean, options = {}) {
  let now = 0;
  const seen: string[] = [];
  const intake = new FleetIntake(
    (msg) => {
      seen.push(`${msg.topic.split('/')[1]}#${msg.receivedAt}`);
      return accept(msg) ? 'accepted' : 'rejected';
    },
    { clock: { monotonic: () => now }, defer: () => undefined, ...options },
  );
  return { intake, seen, tick: (ms: number) => (now += ms) };
}

describe('FleetIntake', () => {
  it('takes one message per source in turn and keeps each source in order', () => {
    const { intake, seen } = setup(() => false);
    for (let i = 0; i < 3; i++) intake.push(m('a', i));
    intake.push(m('b', 10));
    intake.drainAll();
    expect(seen).toEqual(['a#0', 'b#10', 'a#1', 'a#2']);
  });

  it('trusts a source whose accepted messages span trustAfterMs, and serves it first', () => {
    const { intake, seen, tick } = setup((msg) => msg.topic.includes('/good/'));
    intake.push(m('good', 1));
    intake.drainAll();
    tick(1000);
    intake.push(m('good', 2));
    intake.drainAll();
    expect(intake.stats().goodSources).toBe(1);
    for (let i = 0; i < 100; i++) intake.push(m(`bad-${i}`, 100 + i));
    intake.push(m('good', 3));
    intake.drainAll();
    expect(seen.slice(2, 3)).toEqual(['good#3']);
    // Rejections alone never demote it; silence for forgetAfterMs does.
    for (let i = 0; i < 50; i++) intake.push({ ...m('good', 500 + i), payload: Buffer.from('x') });
    intake.drainAll();
    expect(intake.stats().goodSources).toBe(1);
  });

  it('stays within maxQueued, dropping the newest of untrusted sources, and counts it', () => {
    const { intake } = setup(() => false, { maxQueued: 100 });
    for (let i = 0; i < 1000; i++) intake.push(m(`x-${i % 7}`, i));
    expect(intake.stats()).toMatchObject({ queued: 100, dropped: 900 });
    intake.drainAll();
    expect(intake.stats()).toMatchObject({ queued: 0, queuedBytes: 0 });
  });
});

describe('refusedFilters', () => {
  it('names each refused filter with its reason code; undefined without a SUBACK or a refusal', () => {
    expect(refusedFilters(['replug/+/#'], { granted: [0x80] })?.detail).toBe(
      "subscription refused: replug/+/# (0x80 unspecified error); check this user's rights on the broker",
    );
    expect(refusedFilters(['replug/a/#', 'replug/b/#'], { granted: [0, 0x87] })).toMatchObject({
      granted: 1,
      detail: expect.stringContaining('replug/b/# (0x87 not authorized)'),
    });
    expect(refusedFilters(['x'], undefined)).toBeUndefined();
    expect(refusedFilters(['x'], { granted: [1] })).toBeUndefined();
  });
});
