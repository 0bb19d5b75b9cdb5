/**
 * --driver modules get their options (issue 13): every --driver-option K=V, and --probe-interval both in
 * the factory's options and as the interval the session probes a driver that states none.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/agent.js';
import { loadSessionDriver } from '../../src/agent/driver.js';
import { startBroker } from '../../src/broker/broker.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/util/clock.js';

const DRIVER = fileURLToPath(new URL('./fixtures/options-driver.mjs', import.meta.url));
const BROKEN = fileURLToPath(new URL('./fixtures/broken-driver.mjs', import.meta.url));

describe('--driver options', () => {
  it('hands --driver-option and --probe-interval to the factory, and probes at --probe-interval', async () => {
    const config = loadAgentConfig(
      [
        '--driver',
        DRIVER,
        '--driver-option',
        'baud=115200',
        '--driver-option',
        'port=/dev/ttyUSB0',
        '--probe-interval',
        '750',
      ],
      {},
      { hostname: 'h' },
    );
    const driver = await loadSessionDriver(config, {
      log: silentLogger(),
      cwd: process.cwd(),
      clock: systemClock,
    });
    const { seen } = (await import(DRIVER)) as { seen: Record<string, unknown>[] };
    expect(seen.at(-1)).toEqual({ baud: '115200', port: '/dev/ttyUSB0', probeIntervalMs: 750 });
    expect(driver.probeIntervalMs).toBe(750);
  });

  it('without --probe-interval the factory keeps its own default, and the session the agent default', async () => {
    const config = loadAgentConfig(['--driver', DRIVER], {}, { hostname: 'h' });
    const driver = await loadSessionDriver(config, {
      log: silentLogger(),
      cwd: process.cwd(),
      clock: systemClock,
    });
    const { seen } = (await import(DRIVER)) as { seen: Record<string, unknown>[] };
    expect(seen.at(-1)).toEqual({});
    expect(driver.probeIntervalMs).toBe(2000);
  });

  it('a --driver module that cannot load fails the start before the broker sees the agent online', async () => {
    // The driver used to load with the USB side, after the MQTT client had published `online`: a broker
    // saw the agent online and then offline for a start that never worked.
    const broker = await startBroker({ port: 0 });
    const stateDir = await mkdtemp(join(tmpdir(), 'replug-driver-'));
    const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    const seen: string[] = [];
    sub.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    try {
      await sub.subscribeAsync('replug/#', { qos: 1 });
      const config = loadAgentConfig(
        ['--id', 'broken-pi', '--mqtt', broker.url, '--driver', BROKEN, '--state-dir', stateDir],
        {},
        { hostname: 'h' },
      );
      const deps = {
        clock: systemClock,
        log: silentLogger(),
        env: {},
        hostname: 'h',
        homedir: stateDir,
        version: '0.0.0',
        cwd: process.cwd(),
      };
      await expect(startAgent(config, deps)).rejects.toThrow(/broken on purpose|driver/);
      // A round trip through the broker: anything the agent published before failing has arrived by now.
      // (the broker delivers in order, so once the probe is back every earlier publish is too).
      await sub.publishAsync('replug/probe', 'x', { qos: 1 });
      for (let i = 0; i < 500 && !seen.includes('replug/probe x'); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(seen).toContain('replug/probe x');
      expect(seen.filter((m) => m.startsWith('replug/broken-pi/'))).toEqual([]);
    } finally {
      await sub.endAsync();
      await broker.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
