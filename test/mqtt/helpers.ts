/** Shared by the MQTT suites: a real Aedes on port 0, a recording MQTT.js subscriber, temp state dirs. */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Aedes, type AedesOptions } from 'aedes';
// Aedes 1.2 speaks MQTT 3.1/3.1.1 only: a real broker for the publisher's fall back from MQTT 5 (issue 14).
import { Aedes as AedesV311 } from 'aedes-v1';
import mqtt, { type MqttClient } from 'mqtt';

export interface AedesHandle {
  broker: Aedes;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** A real Aedes on port 0; `v311Only` starts Aedes 1.2, which refuses MQTT 5 CONNECTs. */
export async function startAedes(
  options: AedesOptions = {},
  { v311Only = false }: { v311Only?: boolean } = {},
): Promise<AedesHandle> {
  const broker = v311Only
    ? ((await AedesV311.createBroker(options as never)) as unknown as Aedes)
    : await Aedes.createBroker(options);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    broker,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Received {
  topic: string;
  json: Record<string, unknown>;
  retain: boolean;
  userProperties?: Record<string, string | string[]>;
  contentType?: string;
}

export interface Recorder {
  client: MqttClient;
  messages: Received[];
  /** Waits until `predicate` holds over the messages so far. */
  until(predicate: (messages: Received[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

export async function record(url: string, filter: string, protocolVersion: 4 | 5 = 4): Promise<Recorder> {
  const client = mqtt.connect(url, { protocolVersion, reconnectPeriod: 100, clean: true });
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    const props = packet.properties;
    messages.push({
      topic,
      json: payload.length ? (JSON.parse(payload.toString('utf8')) as Record<string, unknown>) : {},
      retain: packet.retain,
      ...(props?.userProperties ? { userProperties: props.userProperties } : {}),
      ...(props?.contentType ? { contentType: props.contentType } : {}),
    });
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    messages,
    async until(predicate, timeoutMs = 10_000, what = 'messages') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(messages)) {
        if (Date.now() > deadline) {
          throw new Error(
            `timed out waiting for ${what}; got ${messages.length}: ${JSON.stringify(messages.slice(-5))}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => client.endAsync(true),
  };
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
