/**
 * RetainedState.acknowledged (issue 17, start-up): the agent starts its USB side once the broker has
 * acknowledged `online`. A fake client whose PUBACKs the test releases one by one.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { AgentClient } from '../../src/mqtt/client.js';
import { RetainedState } from '../../src/mqtt/retained.js';

type Client = Pick<AgentClient, 'isUp' | 'publish' | 'on' | 'refusedPublish'>;

function fakeClient() {
  const pending: { topic: string; ack: () => void; fail: (err: Error) => void }[] = [];
  let onUp: (() => void) | undefined;
  const client = {
    isUp: false,
    publish(topic: string) {
      return new Promise<void>((ack, fail) => {
        pending.push({ topic, ack, fail });
      });
    },
    on(_event: string, fn: () => void) {
      onUp = fn;
      return () => {
        onUp = undefined;
      };
    },
    refusedPublish() {},
  };
  return {
    client: client as unknown as Client,
    pending,
    up() {
      client.isUp = true;
      onUp?.();
    },
  };
}

/** Whether `p` has settled once the microtasks queued so far have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('RetainedState.acknowledged', () => {
  it('resolves on the PUBACK of the first publish after connect, not before', async () => {
    const f = fakeClient();
    const state = new RetainedState(f.client, silentLogger());
    state.put('replug/a/status', () => ({ state: 'online' }));
    const acked = state.acknowledged('replug/a/status');
    expect(await settled(acked)).toBe(false); // not connected: nothing sent yet
    f.up();
    expect(f.pending.map((p) => p.topic)).toEqual(['replug/a/status']);
    expect(await settled(acked)).toBe(false); // sent, not acknowledged
    f.pending[0]?.ack();
    expect(await settled(acked)).toBe(true);
    // Asked again later: at once.
    expect(await settled(state.acknowledged('replug/a/status'))).toBe(true);
  });

  it('does not resolve on a refused or lost publish, and does on the next one acknowledged', async () => {
    const f = fakeClient();
    const state = new RetainedState(f.client, silentLogger());
    f.up();
    state.put('replug/a/status', () => ({ state: 'online' }));
    const acked = state.acknowledged('replug/a/status');
    f.pending[0]?.fail(new Error('connection lost'));
    expect(await settled(acked)).toBe(false);
    state.republish(); // the next connect
    f.pending[1]?.ack();
    expect(await settled(acked)).toBe(true);
  });

  it('a topic put again waits for the new payload, not for the acknowledgement of the old one', async () => {
    const f = fakeClient();
    const state = new RetainedState(f.client, silentLogger());
    f.up();
    state.put('replug/a/info', () => ({ v: 1 }));
    f.pending[0]?.ack();
    expect(await settled(state.acknowledged('replug/a/info'))).toBe(true);
    state.put('replug/a/info', () => ({ v: 2 }));
    const second = state.acknowledged('replug/a/info');
    expect(await settled(second)).toBe(false);
    f.pending[1]?.ack();
    expect(await settled(second)).toBe(true);
  });
});
