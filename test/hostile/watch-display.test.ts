/**
 * Issue 12, what `replug watch` shows: no terminal escapes from payloads (a retained target state whose
 * `target` is `1209:0001:\e]0;PWNED\a…` printed an OSC sequence), an offline agent's sessions not shown
 * as a green "up", and agents behind a lost broker link shown as unknown, not as they last were.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../src/broker/broker.js';
import { emptyFleet, reduce } from '../../src/fleet/aggregate.js';
import { renderFrame } from '../../src/fleet/render.js';
import { stripAnsi } from '../../src/fleet/table.js';
import type { AgentState, FleetState } from '../../src/fleet/types.js';
import { watch } from '../fleet/cli.js';
import { buildStatus, msg, T0, targetFor } from '../fleet/sim.js';

const PWN = '\u001b]0;PWNED\u0007\u001b[2J\u009b31m\u202e';
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const ESCAPES = /[\u001b\u0007\u009b\u202e]/;

function fleetWith(over: Partial<AgentState>): FleetState {
  let s = emptyFleet();
  s = reduce(s, msg('replug/pi/status', buildStatus('online', 3, T0))).state;
  s = reduce(
    s,
    msg('replug/pi/target/1209-0001/state', targetFor(3, { target: '1209:0001', serial: undefined })),
  ).state;
  const a = [...s.agents.values()][0] as AgentState;
  s.agents.set(a.id, { ...a, ...over });
  return s;
}

describe('watch display (issue 12)', () => {
  let broker: RunningBroker | undefined;
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
  });

  it('the view strips control characters from everything a payload or a broker put in it', () => {
    const t = targetFor(3, { target: `1209:0001:${PWN}`, serial: PWN });
    const s = fleetWith({
      targets: Object.assign(Object.create(null), {
        x: { ...t, lastError: { code: `X${PWN}`, message: PWN } },
      }),
      lastEvent: { type: 'session.state', seq: 1, ts: T0, summary: PWN },
    });
    for (const width of [200, 60]) {
      for (const color of [false, true]) {
        const frame = renderFrame(s, {
          width,
          color,
          now: T0,
          brokers: [{ url: `mqtt://a:1883`, state: `lost: ${PWN}`, ok: false }],
        });
        // Our own colours are SGR (ESC [ ... m); nothing else may reach the terminal.
        const foreign = stripAnsi(frame);
        expect(ESCAPES.test(foreign), JSON.stringify(foreign.slice(0, 400))).toBe(false);
      }
    }
  });

  it('a retained target state with an OSC sequence is refused by the schema and never printed', async () => {
    broker = await startBroker({ port: 0 });
    const key = `1209-0001-${PWN.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
    const pub = await mqtt.connectAsync(broker.url);
    await pub.publishAsync('replug/evil/status', JSON.stringify(buildStatus('online', 1, T0)), {
      retain: true,
      qos: 1,
    });
    await pub.publishAsync(
      `replug/evil/target/${key}/state`,
      JSON.stringify(targetFor(1, { target: `1209:0001:${PWN}`, serial: PWN })),
      { retain: true, qos: 1 },
    );
    await pub.endAsync();
    const run = watch(['--once', '--mqtt', broker.url, '-W', '3']);
    expect(await run.code).toBe(0);
    expect(ESCAPES.test(run.stdout.text)).toBe(false);
    expect(ESCAPES.test(run.stderr.text)).toBe(false);
    expect(run.stdout.text).toMatch(/warnings: 1 \((schema|target-mismatch) 1\)/);
  });

  it('an offline agent’s targets are history ("last: up"), never a green "up"', () => {
    const s = fleetWith({ status: buildStatus('offline', 3, T0) });
    const plain = renderFrame(s, { width: 160, color: false, now: T0 });
    const row = plain.split('\n').find((l) => l.includes(' pi '))!;
    expect(row).toContain('offline s3');
    expect(row).toContain('last: up');
    const coloured = renderFrame(s, { width: 160, color: true, now: T0 });
    expect(coloured).not.toContain('\u001b[32mup');
    expect(coloured).not.toContain('\u001b[32mlast: up');
  });

  it('with the broker link lost, an agent last seen online is unknown, with how long ago', async () => {
    broker = await startBroker({ port: 0 });
    const pub = await mqtt.connectAsync(broker.url);
    await pub.publishAsync('replug/pi/status', JSON.stringify(buildStatus('online', 1, Date.now())), {
      retain: true,
      qos: 1,
    });
    await pub.endAsync();
    const run = watch(['--mqtt', broker.url]);
    await run.until(() => run.stdout.text.includes('online s1'), 'the agent online');
    const closing = broker.close();
    broker = undefined;
    await closing;
    await run.until(() => /unknown · seen \d+s ago · was online s1/.test(run.stdout.text), 'unknown', 10_000);
    const last = run.stdout.text.trim().split('\n\n').at(-1) ?? '';
    expect(last).toMatch(/0 online · 0 offline · 1 unknown/);
    expect(await run.stop()).toBe(0);
    expect(run.stderr.text).toMatch(/lost/);
  });
});
