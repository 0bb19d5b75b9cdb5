/**
 * --driver modules get their options (issue 13): every --driver-option K=V, and --probe-interval both in
 * the factory's options and as the interval the session probes a driver that states none.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSessionDriver } from '../../src/agent/driver.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { silentLogger } from '../../src/log.js';
import { systemClock } from '../../src/util/clock.js';

const DRIVER = fileURLToPath(new URL('./fixtures/options-driver.mjs', import.meta.url));

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
});
