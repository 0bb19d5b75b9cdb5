/**
 * The responder without a broker: every action against fake ports, and every refusal (hostile payloads,
 * stale and retained requests, replays, unknown actions) answers an error and calls no port.
 */
import { describe, expect, it } from 'vitest';
import { RequestCodes } from '../../src/control/codes.js';
import { MAX_REQUEST_BYTES, parseRequest } from '../../src/control/contract.js';
import { type Outcome, Responder } from '../../src/control/responder.js';
import { validateControl } from '../../src/control/schema.js';
import { fakePorts } from './fake-ports.js';

const NOW = 1_800_000_000_000;
const clock = { now: () => NOW };

function responder(ports = fakePorts()) {
  return { ports, r: new Responder({ agent: 'pi-01', ports, clock, maxAgeMs: 60_000 }) };
}

function req(action: string, body: unknown, extra: { retain?: boolean; to?: string } = {}) {
  const payload = typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
  return { topic: `replug/${extra.to ?? 'pi-01'}/request/${action}`, payload, retain: extra.retain ?? false };
}

function only(out: Outcome) {
  if (out.kind !== 'answered') throw new Error(`expected an answer, got ${out.kind}`);
  expect(out.publishes).toHaveLength(1);
  const p = out.publishes[0]!;
  expect(validateControl('response', JSON.parse(p.payload))).toEqual({ ok: true });
  return { topic: p.topic, ...p.response };
}

describe('responder', () => {
  it('answers every action on replug/<id>/response/<action>, echoing the transaction', async () => {
    const { r, ports } = responder();
    const t = '1209:0001:LAB1';
    const cases: [string, object, unknown][] = [
      ['republish', {}, { topics: 5 }],
      ['rescan', {}, { sources: ['sysfs'], devices: 1 }],
      ['restart', { target: t }, { target: t, state: 'up' }],
      ['doctor', {}, { summary: 'runtime=native' }],
      ['list', {}, { devices: [{ key: 'serial:LAB1' }], count: 1 }],
      [
        'forget',
        { target: '0403:6001' },
        { target: '0403:6001', cleared: ['replug/a/target/0403-6001/state'] },
      ],
      ['forget', { device: 'serial:GONE' }, { device: 'serial:GONE', cleared: [] }],
    ];
    for (const [i, [action, body, data]] of cases.entries()) {
      const a = only(await r.handle(req(action, { ...body, transaction: `t${i}`, ts: NOW })));
      expect(a).toEqual({
        topic: `replug/pi-01/response/${action}`,
        status: 'ok',
        data,
        transaction: `t${i}`,
        ts: NOW,
      });
    }
    expect(ports.calls).toEqual([
      'republish',
      'rescan',
      `restart ${t}`,
      'doctor',
      'list',
      'forget 0403-6001',
    ]);
  });

  it('reset: heal_unavailable without a heal service, the ladder result with one, RESET_FAILED when it failed', async () => {
    const without = only(await responder().r.handle(req('reset', { target: '1209-0001-lab1' })));
    expect(without.error?.code).toBe(RequestCodes.HEAL_UNAVAILABLE);
    const runs: string[] = [];
    const heal = {
      run: async (key: string, step?: string) => {
        runs.push(`${key} ${step ?? 'ladder'}`);
        return { step: step ?? 'usb-reset', outcome: step === 'rebind' ? 'failed' : 'ok', ms: 42 };
      },
    };
    const { r } = responder(fakePorts(heal));
    expect(only(await r.handle(req('reset', { target: '1209:0001:LAB1' })))).toMatchObject({
      status: 'ok',
      data: { target: '1209:0001:LAB1', step: 'usb-reset', outcome: 'ok', ms: 42 },
    });
    const failed = only(await r.handle(req('reset', { target: '1209:0001:LAB1', step: 'rebind' })));
    expect(failed).toMatchObject({
      status: 'error',
      error: { code: RequestCodes.RESET_FAILED },
      data: { outcome: 'failed' },
    });
    expect(runs).toEqual(['1209:0001:LAB1 ladder', '1209:0001:LAB1 rebind']);
  });

  it('refuses targets it does not have, actions it does not know, and forgetting what is configured or present', async () => {
    const { r, ports } = responder();
    const code = async (action: string, body: object) => only(await r.handle(req(action, body))).error?.code;
    expect(await code('restart', {})).toBe(RequestCodes.TARGET_REQUIRED);
    expect(await code('restart', { target: 'dead:beef' })).toBe(RequestCodes.TARGET_UNKNOWN);
    expect(await code('reset', { target: 'dead:beef' })).toBe(RequestCodes.TARGET_UNKNOWN);
    expect(await code('forget', { target: '1209:0001:LAB1' })).toBe(RequestCodes.TARGET_CONFIGURED);
    expect(await code('forget', { device: 'serial:LAB1' })).toBe(RequestCodes.DEVICE_PRESENT);
    expect(await code('forget', { target: 'not a key' })).toBe(RequestCodes.INVALID);
    expect(await code('selfdestruct', {})).toBe(RequestCodes.UNKNOWN_ACTION);
    expect(ports.calls).toEqual([]);
  });

  it('a replayed transaction is acted on and answered once, on its own topic or the fleet topic', async () => {
    const { r, ports } = responder();
    expect((await r.handle(req('republish', { transaction: 'x1' }))).kind).toBe('answered');
    expect(await r.handle(req('republish', { transaction: 'x1' }))).toEqual({
      kind: 'replayed',
      action: 'republish',
      transaction: 'x1',
    });
    expect((await r.handle(req('republish', { transaction: 'x1' }, { to: '_fleet' }))).kind).toBe('replayed');
    // 1 and "1" are different ids.
    expect((await r.handle(req('republish', { transaction: 1 }))).kind).toBe('answered');
    expect((await r.handle(req('republish', { transaction: '1' }))).kind).toBe('answered');
    expect(ports.calls).toEqual(['republish', 'republish', 'republish']);
  });

  it('forgets the oldest transactions beyond its bound', async () => {
    const ports = fakePorts();
    const r = new Responder({ agent: 'pi-01', ports, clock, transactionMemory: 2 });
    for (const t of ['a', 'b', 'c']) await r.handle(req('list', { transaction: t }));
    expect((await r.handle(req('list', { transaction: 'c' }))).kind).toBe('replayed');
    expect((await r.handle(req('list', { transaction: 'a' }))).kind).toBe('answered');
  });

  it('refuses stale, future, retained and hostile requests with an error and calls nothing', async () => {
    const { r, ports } = responder();
    const code = async (d: ReturnType<typeof req>) => only(await r.handle(d)).error?.code;
    expect(await code(req('republish', { ts: NOW - 61_000, transaction: 's' }))).toBe(RequestCodes.STALE);
    expect(await code(req('republish', { ts: NOW + 61_000 }))).toBe(RequestCodes.STALE);
    expect(await code(req('republish', {}, { retain: true }))).toBe(RequestCodes.RETAINED);
    expect(await code(req('republish', 'not json {'))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', '[1,2]'))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', 'null'))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', { transaction: { $gt: 1 } }))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', { ts: '1800000000000' }))).toBe(RequestCodes.INVALID);
    expect(await code(req('restart', { target: 5 }))).toBe(RequestCodes.INVALID);
    expect(await code(req('restart', { target: 'a\u001b[2Jb' }))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', { __proto__: 1, admin: true }))).toBe(RequestCodes.INVALID);
    expect(await code(req('republish', 'x'.repeat(MAX_REQUEST_BYTES + 1)))).toBe(RequestCodes.TOO_LARGE);
    expect(await code(req('re\u001bpublish', {}))).toBe(RequestCodes.UNKNOWN_ACTION);
    expect(ports.calls).toEqual([]);
    // The stale one kept its (valid) transaction; a stale request is not remembered, so a fresh copy works.
    expect(only(await r.handle(req('republish', { ts: NOW - 61_000, transaction: 's' }))).transaction).toBe(
      's',
    );
  });

  it('an invalid action level answers on response/_invalid, never echoing it into a topic', async () => {
    const { r } = responder();
    const a = only(await r.handle(req('A'.repeat(100), {})));
    expect(a.topic).toBe('replug/pi-01/response/_invalid');
  });

  it('ignores requests for other agents, and topics that are not requests', async () => {
    const { r } = responder();
    expect(await r.handle(req('republish', {}, { to: 'pi-02' }))).toEqual({ kind: 'ignored' });
    expect(
      await r.handle({ topic: 'replug/pi-01/response/list', payload: Buffer.from('{}'), retain: false }),
    ).toEqual({ kind: 'ignored' });
  });

  it('an empty payload is an empty request', async () => {
    expect(parseRequest(Buffer.alloc(0), NOW, 1000)).toEqual({ ok: true, request: {} });
  });

  it('MQTT 5: Correlation Data on every answer; a Response Topic only under its own response root', async () => {
    const { r } = responder();
    const cd = Buffer.from('abc');
    const out = await r.handle({
      ...req('list', {}),
      responseTopic: 'replug/pi-01/response/list/me',
      correlationData: cd,
    });
    if (out.kind !== 'answered') throw new Error(out.kind);
    expect(out.publishes.map((p) => [p.topic, p.correlationData?.toString()])).toEqual([
      ['replug/pi-01/response/list', 'abc'],
      ['replug/pi-01/response/list/me', 'abc'],
    ]);
    for (const rt of [
      'replug/pi-02/status',
      'replug/pi-01/status',
      'replug/pi-01/response/+/x',
      'elsewhere',
    ]) {
      const o = await r.handle({ ...req('list', {}), responseTopic: rt, correlationData: cd });
      if (o.kind !== 'answered') throw new Error(o.kind);
      expect(o.publishes.map((p) => p.topic)).toEqual(['replug/pi-01/response/list']);
    }
  });

  it('refuses past its in-flight bound while actions run, and takes requests again once they ended', async () => {
    const ports = fakePorts();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    ports.doctor = async () => {
      await gate;
      return {};
    };
    const r = new Responder({ agent: 'pi-01', ports, clock, maxInFlight: 2 });
    const running = [r.handle(req('doctor', {})), r.handle(req('doctor', {}))];
    expect(only(await r.handle(req('doctor', {}))).error?.code).toBe(RequestCodes.BUSY);
    release();
    for (const out of await Promise.all(running)) expect(only(out).status).toBe('ok');
    expect(only(await r.handle(req('list', {}))).status).toBe('ok');
  });

  it('an action that throws answers ACTION_FAILED', async () => {
    const ports = fakePorts();
    ports.rescan = async () => {
      throw new Error('EIO reading /sys');
    };
    const out = only(await new Responder({ agent: 'pi-01', ports, clock }).handle(req('rescan', {})));
    expect(out.error).toEqual({
      code: RequestCodes.ACTION_FAILED,
      message: 'rescan failed: EIO reading /sys',
    });
  });
});
