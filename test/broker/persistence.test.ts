/**
 * Retained state on disk: what one broker stored, the next broker on the same state dir serves
 * (real LevelDB in a temp dir, real mosquitto clients).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { openPersistence } from '../../src/broker/persistence.js';
import { ErrorCodes } from '../../src/errors.js';
import {
  clientsAvailable,
  mosquittoPub,
  mosquittoSubOnce,
  startSubscriber,
} from '../helpers/mosquitto-clients.js';
import { tempDir } from './fixtures.js';

const haveClients = clientsAvailable('broker persistence (test/broker/persistence.test.ts)');

describe.skipIf(!haveClients)('broker persistence', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    tmp = await tempDir('replug-broker-state-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('retained messages survive a broker restart with the same state dir', async () => {
    const first = await startBroker({ port: 0, persistenceDir: tmp.dir });
    const at = (port: number) => ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'];
    try {
      for (const [topic, payload] of [
        ['replug/pi/status', '{"state":"online","session":3}'],
        ['replug/pi/devices', '[]'],
        ['replug/pi/gone', 'x'],
      ] as const) {
        const pub = await mosquittoPub([
          ...at(first.address.port),
          '-r',
          '-q',
          '1',
          '-t',
          topic,
          '-m',
          payload,
        ]);
        expect(pub.code).toBe(0);
      }
      // An empty retained payload deletes (MQTT 3.1.1 §3.3.1.3): the deletion must persist too.
      await mosquittoPub([...at(first.address.port), '-r', '-q', '1', '-t', 'replug/pi/gone', '-n']);
    } finally {
      await first.close();
    }

    const second = await startBroker({ port: 0, persistenceDir: tmp.dir });
    try {
      const census = await mosquittoSubOnce([
        ...at(second.address.port),
        ...['-t', 'replug/#', '-v', '--retained-only', '-C', '2', '-W', '3'],
      ]);
      const lines = census.stdout.trim().split('\n').sort();
      expect(lines).toEqual(['replug/pi/devices []', 'replug/pi/status {"state":"online","session":3}']);
    } finally {
      await second.close();
    }
  });

  it('a persistent session (clean=false) keeps its subscription and queued QoS 1 messages across a restart', async () => {
    const at = (port: number) => ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'];
    const session = ['-c', '-i', 'replug-watch-1', '-q', '1', '-t', 'replug/+/event'];
    const first = await startBroker({ port: 0, persistenceDir: tmp.dir });
    try {
      const sub = startSubscriber([...at(first.address.port), ...session]);
      expect(await sub.subscribed()).toEqual([1]);
      await sub.stop(); // goes offline; the session stays
    } finally {
      await first.close();
    }
    const second = await startBroker({ port: 0, persistenceDir: tmp.dir });
    try {
      // Published while the subscriber is offline and after the restart: only the stored subscription
      // can route it, and only the stored queue can deliver it.
      await mosquittoPub([...at(second.address.port), '-q', '1', '-t', 'replug/pi/event', '-m', '{"seq":1}']);
      const back = await mosquittoSubOnce([...at(second.address.port), ...session, '-C', '1', '-W', '3']);
      expect(back.stdout.trim()).toBe('{"seq":1}');
    } finally {
      await second.close();
    }
  });

  it('without a state dir, retained messages live only as long as the broker', async () => {
    const at = (port: number) => ['-h', '127.0.0.1', '-p', String(port)];
    const first = await startBroker({ port: 0 });
    await mosquittoPub([...at(first.address.port), '-r', '-q', '1', '-t', 'replug/pi/status', '-m', 'on']);
    const same = await mosquittoSubOnce([...at(first.address.port), '-t', 'replug/#', '-C', '1', '-W', '2']);
    expect(same.stdout.trim()).toBe('on');
    await first.close();
    const second = await startBroker({ port: 0 });
    try {
      const after = await mosquittoSubOnce([
        ...at(second.address.port),
        '-t',
        'replug/#',
        '--retained-only',
        '-W',
        '1',
      ]);
      expect(after.stdout).toBe('');
    } finally {
      await second.close();
    }
  });

  it('a second broker on a state dir in use fails with STATE_DIR, and leaves the first one working', async () => {
    const first = await startBroker({ port: 0, persistenceDir: tmp.dir });
    try {
      await expect(startBroker({ port: 0, persistenceDir: tmp.dir })).rejects.toMatchObject({
        code: ErrorCodes.STATE_DIR,
        message: `broker state dir ${tmp.dir} is in use by another broker`,
      });
    } finally {
      await first.close();
    }
    const reopened = await openPersistence(tmp.dir);
    await reopened.close();
  });

  it('a state dir that cannot be created fails with STATE_DIR', async () => {
    const { writeFile } = await import('node:fs/promises');
    const path = await import('node:path');
    const file = path.join(tmp.dir, 'a-file');
    await writeFile(file, '');
    await expect(openPersistence(path.join(file, 'sub'))).rejects.toMatchObject({
      code: ErrorCodes.STATE_DIR,
    });
  });
});
