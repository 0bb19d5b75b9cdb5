/**
 * The MQTT client's connection union and its reports: refusals reported without throwing (issue 12), the
 * meaning of reason codes (issue 13), and the TLS reason in the outage line (issue 11). Real Aedes on port
 * 0, real MQTT.js, real openssl certificates.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { type ConnectionState, connectionStep, tlsProblem } from '../../src/mqtt/connection.js';
import { createPublisher, type PublisherOptions } from '../../src/mqtt/publisher.js';
import { connackReason, pubackReason } from '../../src/mqtt/reason-codes.js';
import { createTestPki, makeLeaf, type TestPki } from '../helpers/tls.js';
import { device } from './fixtures.js';
import { type AedesHandle, record, startAedes, tempDir } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function logged() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  return { log, lines, said: (re: RegExp) => lines.filter((l) => re.test(l.msg)) };
}

async function publisher(extra: Partial<PublisherOptions> & { url: string }) {
  const state = await tempDir('replug-client-');
  const p = createPublisher({
    agent: 'pi-client',
    session: 1,
    runtime: 'native',
    stateDir: state.dir,
    reconnectPeriodMs: 100,
    ...extra,
  });
  cleanups.push(async () => {
    await p.stop();
    await state.cleanup();
  });
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the connection union (pure)', () => {
  const broker = 'mqtt://h:1883';
  it('connecting -> down says "cannot reach" once with the TLS reason; down -> up says it is back', () => {
    let s: ConnectionState = { kind: 'connecting', since: 0 };
    s = connectionStep(s, { type: 'problem', text: 'TLS: x' }, broker).state;
    const down = connectionStep(s, { type: 'close', at: 10 }, broker);
    expect(down.state).toEqual({ kind: 'down', since: 10, everUp: false, problem: 'TLS: x' });
    expect(down.say?.message).toBe(
      'cannot reach the broker mqtt://h:1883 (TLS: x); queueing events and retrying',
    );
    expect(down.delivery).toBe('pause');
    const again = connectionStep(down.state, { type: 'close', at: 20 }, broker);
    expect(again.say).toBeUndefined();
    expect(connectionStep(again.state, { type: 'problem', text: 'TLS: y' }, broker).say).toBeUndefined();
    const up = connectionStep(down.state, { type: 'connack', protocol: 5, at: 50 }, broker);
    expect(up.state).toEqual({ kind: 'up', protocol: 5, since: 50, reconnect: false });
    expect(up.say).toMatchObject({
      message: 'broker mqtt://h:1883 is back; delivering queued events',
      fields: { downMs: 40 },
    });
  });

  it('up -> down says "lost"; a TLS reason later in that outage is said once', () => {
    const up: ConnectionState = { kind: 'up', protocol: 4, since: 0, reconnect: false };
    const lost = connectionStep(up, { type: 'close', at: 5 }, broker);
    expect(lost.say?.message).toBe('lost the broker mqtt://h:1883; queueing events and retrying');
    const tls = connectionStep(lost.state, { type: 'problem', text: 'TLS: expired' }, broker);
    expect(tls.say?.message).toBe('broker mqtt://h:1883: TLS: expired; still retrying');
    expect(connectionStep(tls.state, { type: 'problem', text: 'TLS: expired' }, broker).say).toBeUndefined();
    const back = connectionStep(tls.state, { type: 'connack', protocol: 4, at: 9 }, broker);
    expect(back.state).toMatchObject({ kind: 'up', reconnect: true });
    expect(connectionStep({ kind: 'stopped' }, { type: 'close', at: 1 }, broker).state).toEqual({
      kind: 'stopped',
    });
  });

  it('words the TLS verification errors a user meets', () => {
    expect(tlsProblem({ code: 'CERT_HAS_EXPIRED' })).toBe("TLS: the broker's certificate has expired");
    expect(tlsProblem({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })).toContain('certificate verify failed');
    expect(
      tlsProblem({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        message: "IP: 127.0.0.1 is not in the cert's list",
      }),
    ).toContain('hostname mismatch');
    expect(tlsProblem({ code: 'ECONNREFUSED' })).toBeUndefined();
  });

  it('maps reason codes to their meaning (CONNACK v3 and v5, PUBACK)', () => {
    expect(connackReason(4, 4)).toEqual({ code: 4, meaning: 'bad user name or password', kind: 'auth' });
    expect(connackReason(0x85, 5)).toEqual({
      code: 0x85,
      meaning: 'client identifier not valid',
      kind: 'auth',
    });
    expect(connackReason(0x89, 5).kind).toBe('busy');
    expect(pubackReason(0x87)).toEqual({ code: 0x87, meaning: 'not authorized', kind: 'auth' });
    expect(pubackReason(0x97)).toEqual({ code: 0x97, meaning: 'quota exceeded', kind: 'refused' });
    expect(pubackReason(0xfe).meaning).toBe('reason code 0xfe');
  });
});

describe('refusals are reported, never thrown (issue 12)', () => {
  let aedes: AedesHandle;
  afterEach(async () => aedes?.close());

  it('refused credentials with nobody listening: no uncaught exception, one line, still retrying', async () => {
    aedes = await startAedes({
      authenticate: (_c, _u, _p, done) =>
        done(Object.assign(new Error('bad user'), { returnCode: 4 as const }), null),
    });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    cleanups.push(async () => void process.off('uncaughtException', onUncaught));
    let attempts = 0;
    aedes.broker.on('connectionError', () => attempts++);
    const { log, said } = logged();
    const p = await publisher({ url: aedes.url, username: 'x', password: 'y', log });
    await p.start();
    await sleep(700);
    expect(uncaught).toEqual([]);
    expect(said(/refused the connection/)).toHaveLength(1);
    expect(said(/refused the connection/)[0]?.msg).toContain('bad user name or password (0x86)');
    expect(p.client.state.kind).not.toBe('up');
  });

  it('a negative PUBACK takes the event off the queue with its reason, and frees its window slot', async () => {
    aedes = await startAedes({
      authorizePublish: (_client, packet, done) =>
        done(packet.topic.endsWith('/event') ? new Error('no events here') : null),
    });
    const { log, said } = logged();
    const p = await publisher({ url: aedes.url, log, window: 4 });
    await p.start();
    await p.connected();
    // More events than the window: with a slot lost per refusal, the pump would stall after four.
    for (let i = 1; i <= 10; i++)
      p.publishEvent('reconnect.attempt', { target: '1209:0001', attempt: i, device });
    await p.idle(5000);
    expect(p.stats().queue?.depth).toBe(0);
    const lines = said(/refused event/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ code: 'REPLUG_MQTT_AUTH', reasonCode: 0x87, meaning: 'not authorized' });
  });
});

describe('the outage line gives the TLS reason (issue 11)', () => {
  let pki: TestPki;
  let broker: RunningBroker;
  afterEach(async () => {
    await broker?.close();
    await pki?.cleanup();
  });

  async function tlsBroker(cert: string, key: string) {
    broker = await startBroker({ port: 0, tls: { cert, key }, allowAnonymous: true });
    return broker.url;
  }

  it('a CA that did not sign the broker: "certificate verify failed", once per outage', async () => {
    pki = await createTestPki();
    const url = await tlsBroker(pki.serverCert, pki.serverKey);
    const { log, said } = logged();
    const p = await publisher({ url, ca: pki.otherCaCert, log });
    await p.start();
    await sleep(800); // several retries at 100 ms
    const lines = said(/broker/).filter((l) => l.level >= 40);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(
      /^cannot reach the broker mqtts:\/\/127\.0\.0\.1:\d+ \(TLS: certificate verify failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): the broker's certificate is not signed by the CA the agent trusts\); queueing events and retrying$/,
    );
  });

  it('a certificate for another name: "hostname mismatch"', async () => {
    pki = await createTestPki();
    const { cert, key } = await makeLeaf(
      pki.dir,
      'other-name',
      { cert: pki.caCert, key: pki.caKey },
      'subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n',
    );
    const url = await tlsBroker(cert, key);
    const { log, said } = logged();
    const p = await publisher({ url, ca: pki.caCert, log });
    await p.start();
    await sleep(500);
    const lines = said(/^cannot reach the broker/);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toContain('(TLS: hostname mismatch');
  });
});

describe('a stop while the first connect is in flight', () => {
  it('waits for it and disconnects cleanly: the retained status is `offline stopped`, not the will', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    const p = await publisher({ url: aedes.url });
    await p.start();
    await p.stop(); // CONNECT sent, CONNACK not read yet
    const r = await record(aedes.url, 'replug/pi-client/status');
    cleanups.push(() => r.close());
    await r.until((m) => m.length >= 1, 3000, 'the retained status');
    expect(r.messages[0]?.json).toMatchObject({ state: 'offline', reason: 'stopped' });
  });
});
