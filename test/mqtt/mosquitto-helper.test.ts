import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MosquittoBroker, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { mosquittoPub, mosquittoSubOnce } from '../helpers/mosquitto-clients.js';

describe.skipIf(!mosquittoAvailable('mosquitto helper'))('test/helpers/mosquitto', () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.cleanup();
  });

  it('keeps its port and retained messages across a clean restart, and refuses connections while killed', async () => {
    const port = String(broker.port);
    const pub = await mosquittoPub(['-p', port, '-t', 'helper/x', '-r', '-q', '1', '-m', 'kept']);
    expect(pub.code).toBe(0);
    await broker.restart();
    const sub = await mosquittoSubOnce(['-p', port, '-t', 'helper/x', '-C', '1', '-W', '5']);
    expect(sub.stdout.trim()).toBe('kept');
    await broker.kill();
    expect(broker.running).toBe(false);
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(broker.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    await broker.start();
    expect(broker.running).toBe(true);
    expect(broker.log()).toMatch(/mosquitto version/);
  });
});
