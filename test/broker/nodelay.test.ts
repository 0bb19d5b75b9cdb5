/**
 * The broker's accepted sockets run without Nagle (issue 17, start-up): MQTT writes small packets back to
 * back (a SUBACK, then a PUBLISH), and with Nagle the second waited for the client's delayed ACK of the
 * first, up to 40 ms on Linux (the agent's `online` reached a subscriber ~30 ms after the broker had it).
 * Node has no getter for TCP_NODELAY, so the test watches setNoDelay on the broker's side of a connection.
 */
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBroker } from '../../src/broker/broker.js';
import { memoryLogger } from './fixtures.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('broker sockets', () => {
  it('turns Nagle off on every accepted connection', async () => {
    const calls: { localPort: number | undefined; on: boolean | undefined }[] = [];
    const real = net.Socket.prototype.setNoDelay;
    vi.spyOn(net.Socket.prototype, 'setNoDelay').mockImplementation(function (this: net.Socket, on) {
      calls.push({ localPort: this.localPort, on });
      return real.call(this, on);
    });
    const { log } = await memoryLogger();
    const broker = await startBroker({ port: 0, log });
    const client = net.connect(broker.address.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      // The broker's side of the connection is the socket whose local port is the broker's.
      await vi.waitFor(() => {
        expect(calls).toContainEqual({ localPort: broker.address.port, on: true });
      });
    } finally {
      client.destroy();
      await broker.close();
    }
  });
});
