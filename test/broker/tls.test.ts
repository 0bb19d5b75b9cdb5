/**
 * TLS with a CA the test generates (openssl CLI), checked with mosquitto_sub/pub --cafile/--cert/--key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { loadTls } from '../../src/broker/tls.js';
import { ErrorCodes } from '../../src/errors.js';
import {
  clientsAvailable,
  mosquittoPub,
  requireExecutables,
  startSubscriber,
} from '../helpers/mosquitto-clients.js';
import { createTestPki, type TestPki } from '../helpers/tls.js';

const ready =
  clientsAvailable('broker TLS (test/broker/tls.test.ts)') &&
  requireExecutables(['openssl'], 'broker TLS (test/broker/tls.test.ts)', 'openssl');

describe.skipIf(!ready)('broker over TLS', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });
  afterAll(async () => {
    await pki.cleanup();
  });

  it('serves mqtts:// with a server certificate the client verifies against the test CA', async () => {
    const broker = await startBroker({ port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    try {
      expect(broker.url).toBe(`mqtts://127.0.0.1:${broker.address.port}`);
      const at = ['-h', '127.0.0.1', '-p', String(broker.address.port), '-V', 'mqttv311'];
      const sub = startSubscriber([...at, '--cafile', pki.caCert, '-t', 'replug/#', '-v']);
      expect(await sub.subscribed()).toEqual([0]);
      const pub = await mosquittoPub([...at, '--cafile', pki.caCert, '-t', 'replug/pi/status', '-m', 'tls']);
      expect(pub).toMatchObject({ code: 0, stderr: '' });
      expect(await sub.waitForLines(1)).toEqual(['replug/pi/status tls']);
      await sub.stop();

      // A client trusting another CA must refuse the server (proves the chain is really checked).
      const wrongCa = await mosquittoPub([...at, '--cafile', pki.otherCaCert, '-t', 'x', '-m', '1']);
      expect(wrongCa.code).not.toBe(0);
      // Plain MQTT on the TLS port gets nowhere.
      const plain = await mosquittoPub([...at, '-t', 'x', '-m', '1']);
      expect(plain.code).not.toBe(0);
    } finally {
      await broker.close();
    }
  });

  it('with a client CA, requires a client certificate signed by it', async () => {
    const broker = await startBroker({
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
    });
    try {
      const at = [
        '-h',
        '127.0.0.1',
        '-p',
        String(broker.address.port),
        '--cafile',
        pki.caCert,
        '-t',
        'x',
        '-m',
        '1',
      ];
      const withCert = await mosquittoPub([...at, '--cert', pki.clientCert, '--key', pki.clientKey]);
      expect(withCert).toMatchObject({ code: 0, stderr: '' });
      const without = await mosquittoPub(at);
      expect(without.code).not.toBe(0);
      const foreign = await mosquittoPub([...at, '--cert', pki.otherClientCert, '--key', pki.otherClientKey]);
      expect(foreign.code).not.toBe(0);
    } finally {
      await broker.close();
    }
  });

  it('bad TLS files give BROKER_TLS at start, naming the problem', async () => {
    await expect(loadTls({ cert: pki.serverCert, key: pki.clientKey })).rejects.toMatchObject({
      code: ErrorCodes.BROKER_TLS,
      message: expect.stringMatching(/^TLS certificate or key unusable: .*key values mismatch/),
    });
    await expect(loadTls({ cert: pki.caKey, key: pki.serverKey })).rejects.toMatchObject({
      code: ErrorCodes.BROKER_TLS,
    });
    await expect(
      startBroker({ port: 0, tls: { cert: `${pki.dir}/missing.crt`, key: pki.serverKey } }),
    ).rejects.toMatchObject({
      code: ErrorCodes.BROKER_TLS,
      message: `cannot read TLS cert ${pki.dir}/missing.crt: ENOENT`,
    });
  });
});
