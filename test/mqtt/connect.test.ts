import { describe, expect, it } from 'vitest';
import {
  buildClientOptions,
  type ConnectSettings,
  isAuthFailure,
  isUnsupportedProtocol,
  parseBrokerUrl,
} from '../../src/mqtt/connect.js';
import { validatePayload } from '../../src/mqtt/schema.js';

const base: ConnectSettings = {
  url: 'mqtt://u%40x:p%3Aw@broker.lan:1883',
  agent: 'pi-1',
  session: 7,
  runtime: 'podman',
};
const files: Record<string, string> = { '/pki/ca.pem': 'CA', '/pki/c.pem': 'CERT', '/pki/k.pem': 'KEY' };
const readFile = (p: string) => {
  const text = files[p];
  if (text === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return Buffer.from(text);
};

describe('parseBrokerUrl', () => {
  it('keeps the URL and a credential-free form for info and logs', () => {
    expect(parseBrokerUrl('mqtts://u:secret@h:8883').redacted).toBe('mqtts://h:8883');
    expect(parseBrokerUrl('ws://h:8080/mqtt').redacted).toBe('ws://h:8080/mqtt');
  });
});

describe('buildClientOptions', () => {
  it('MQTT 5: clientId, decoded URL credentials, will with session, delay and properties', () => {
    const o = buildClientOptions(base, 5, 1234, readFile);
    expect(o).toMatchObject({
      protocolVersion: 5,
      clientId: 'replug-pi-1',
      username: 'u@x',
      password: 'p:w',
      clean: false,
      properties: { sessionExpiryInterval: 2 },
      reconnectOnConnackError: true,
    });
    expect(o.will?.topic).toBe('replug/pi-1/status');
    expect(o.will).toMatchObject({ qos: 1, retain: true });
    expect(o.will?.properties).toEqual({
      willDelayInterval: 2,
      contentType: 'application/json',
      userProperties: { agent: 'pi-1', runtime: 'podman', session: '7' },
    });
    const will = JSON.parse(String(o.will?.payload));
    expect(will).toEqual({ state: 'offline', session: 7, ts: 1234 });
    expect(validatePayload('status', will)).toEqual({ ok: true });
  });

  it('MQTT 3.1.1: no v5 properties, clean session, explicit credentials win', () => {
    const o = buildClientOptions({ ...base, username: 'agent', password: 'pw' }, 4, 1, readFile);
    expect(o.protocolVersion).toBe(4);
    expect(o.clean).toBe(true);
    expect(o.properties).toBeUndefined();
    expect(o.will?.properties).toBeUndefined();
    expect([o.username, o.password]).toEqual(['agent', 'pw']);
  });

  it('a will delay of 0 asks for a clean start (no session to resume)', () => {
    const o = buildClientOptions({ ...base, willDelayS: 0 }, 5, 1, readFile);
    expect(o.clean).toBe(true);
    expect(o.properties).toEqual({ sessionExpiryInterval: 0 });
  });

  it('reads TLS files up front and names the one it cannot read', () => {
    const o = buildClientOptions(
      { ...base, url: 'mqtts://h', ca: '/pki/ca.pem', cert: '/pki/c.pem', key: '/pki/k.pem' },
      5,
      1,
      readFile,
    );
    expect([String(o.ca), String(o.cert), String(o.key)]).toEqual(['CA', 'CERT', 'KEY']);
    expect(o.rejectUnauthorized).toBe(true);
    expect(() => buildClientOptions({ ...base, key: '/pki/missing.pem' }, 5, 1, readFile)).toThrow(
      /cannot read the MQTT key file \/pki\/missing\.pem \(ENOENT\)/,
    );
  });
});

describe('CONNACK classification', () => {
  it('tells an unsupported protocol (v3 rc 1, v5 0x84) from refused credentials (4, 5, 0x86, 0x87)', () => {
    expect([1, 0x84].map(isUnsupportedProtocol)).toEqual([true, true]);
    expect([4, 5, 0x86, 0x87].map(isAuthFailure)).toEqual([true, true, true, true]);
    expect([0, 2, 3, 0x80, 'ECONNREFUSED'].some((c) => isAuthFailure(c) || isUnsupportedProtocol(c))).toBe(
      false,
    );
  });
});
