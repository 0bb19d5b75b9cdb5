import { describe, expect, it } from 'vitest';
import type { ErrorInfo } from '../../src/events.js';
import {
  type Effect,
  type MachineEvent,
  type MachineOptions,
  type MachineState,
  type Transition,
  transition,
} from '../../src/session/machine.js';
import type { UsbDevice } from '../../src/usb/types.js';

const dev = (address: number): UsbDevice => ({
  key: 'port:1-1',
  vid: '1209',
  pid: '0001',
  bus: 1,
  address,
  portPath: '1-1',
});
const A = dev(4);
const B = dev(5);
const err: ErrorInfo = { code: 'REPLUG_USB_BUSY', message: 'busy' };
const H = { h: 1 };
const opts: MachineOptions = { delayFor: (n) => Math.min(5000, 250 * 2 ** (n - 1)), probe: true };

type S = MachineState<typeof H>;
const waiting: S = { name: 'waiting' };
const starting: S = { name: 'starting', device: A, attempt: 2, failures: 1 };
const up: S = { name: 'up', device: A, handle: H };
const backoff: S = { name: 'backoff', device: A, attempt: 2, failures: 2, delayMs: 500 };
const term = (next: Extract<S, { name: 'terminating' }>['next'], awaitingOpen = false): S => ({
  name: 'terminating',
  device: A,
  awaitingOpen,
  next,
});
const stopped: S = { name: 'stopped' };

/** Effects without the emit payload details: enough to read a table, exact where it matters. */
function shape(effects: Effect<typeof H>[]): string[] {
  return effects.map((e) => {
    switch (e.type) {
      case 'emit':
        if (e.event.name === 'session.state') return `emit:${e.event.previous}->${e.event.state}`;
        if (e.event.name === 'reconnect.failed') return `emit:failed#${e.event.attempt}+${e.event.retryInMs}`;
        if (e.event.name === 'reconnect.attempt') return `emit:attempt#${e.event.attempt}`;
        return `emit:succeeded#${e.event.attempts}`;
      case 'open':
        return `open:${e.device.address}#${e.attempt}`;
      case 'startTimer':
        return `startTimer:${e.ms}`;
      case 'close':
        return 'close';
      case 'probe':
        return 'probe';
      default:
        return e.type;
    }
  });
}

type Row = [string, S, MachineEvent<typeof H>, S, string[]];
const rows: Row[] = [
  // waiting
  [
    'waiting + present -> starting',
    waiting,
    { type: 'device.present', device: A },
    { name: 'starting', device: A, attempt: 1, failures: 0 },
    ['open:4#1', 'emit:waiting->starting', 'emit:attempt#1'],
  ],
  ['waiting + gone is ignored', waiting, { type: 'device.gone' }, waiting, []],
  ['waiting + timer is ignored', waiting, { type: 'timer.fired' }, waiting, []],
  ['waiting + stop -> stopped', waiting, { type: 'stop' }, stopped, ['emit:waiting->stopped']],
  // starting
  [
    'starting + open.ok -> up',
    starting,
    { type: 'open.ok', handle: H },
    up,
    ['emit:starting->up', 'emit:succeeded#2', 'startProbeTimer'],
  ],
  [
    'starting + open.failed -> backoff (doubling)',
    starting,
    { type: 'open.failed', error: err },
    { name: 'backoff', device: A, attempt: 2, failures: 2, delayMs: 500 },
    ['emit:failed#2+500', 'emit:starting->backoff', 'startTimer:500'],
  ],
  [
    'starting + gone -> terminating awaiting the open',
    starting,
    { type: 'device.gone' },
    term({ kind: 'wait' }, true),
    ['abort', 'emit:starting->terminating'],
  ],
  [
    'starting + stop -> terminating(stop) awaiting the open',
    starting,
    { type: 'stop' },
    term({ kind: 'stop' }, true),
    ['abort', 'emit:starting->terminating'],
  ],
  ['starting + present(other) is ignored', starting, { type: 'device.present', device: B }, starting, []],
  ['starting + probe.failed is ignored', starting, { type: 'probe.failed', error: err }, starting, []],
  // up
  ['up + probe.due -> probe', up, { type: 'probe.due' }, up, ['probe']],
  ['up + probe.ok -> next probe timer', up, { type: 'probe.ok' }, up, ['startProbeTimer']],
  [
    'up + probe.failed -> terminating(retry)',
    up,
    { type: 'probe.failed', error: err },
    term({ kind: 'retry', failures: 1 }),
    ['cancelProbeTimer', 'emit:up->terminating', 'close'],
  ],
  [
    'up + gone -> terminating(wait)',
    up,
    { type: 'device.gone' },
    term({ kind: 'wait' }),
    ['cancelProbeTimer', 'abort', 'emit:up->terminating', 'close'],
  ],
  [
    'up + stop -> terminating(stop)',
    up,
    { type: 'stop' },
    term({ kind: 'stop' }),
    ['cancelProbeTimer', 'abort', 'emit:up->terminating', 'close'],
  ],
  ['up + open.ok is ignored', up, { type: 'open.ok', handle: H }, up, []],
  ['up + timer is ignored', up, { type: 'timer.fired' }, up, []],
  // terminating
  [
    'terminating + closed(wait) -> waiting',
    term({ kind: 'wait' }),
    { type: 'closed' },
    waiting,
    ['emit:terminating->waiting'],
  ],
  [
    'terminating + closed(stop) -> stopped',
    term({ kind: 'stop' }),
    { type: 'closed' },
    stopped,
    ['emit:terminating->stopped'],
  ],
  [
    'terminating + closed(start B) -> starting B',
    term({ kind: 'start', device: B }),
    { type: 'closed' },
    { name: 'starting', device: B, attempt: 1, failures: 0 },
    ['open:5#1', 'emit:terminating->starting', 'emit:attempt#1'],
  ],
  [
    'terminating + closed(retry) -> backoff',
    term({ kind: 'retry', failures: 1 }),
    { type: 'closed' },
    { name: 'backoff', device: A, attempt: 0, failures: 1, delayMs: 250 },
    ['emit:terminating->backoff', 'startTimer:250'],
  ],
  [
    'terminating(awaiting) + late open.ok -> close that handle',
    term({ kind: 'wait' }, true),
    { type: 'open.ok', handle: H },
    term({ kind: 'wait' }, false),
    ['close'],
  ],
  [
    'terminating(awaiting) + open.failed -> waiting',
    term({ kind: 'wait' }, true),
    { type: 'open.failed', error: err },
    waiting,
    ['emit:terminating->waiting'],
  ],
  [
    'terminating(awaiting) + closed is ignored',
    term({ kind: 'wait' }, true),
    { type: 'closed' },
    term({ kind: 'wait' }, true),
    [],
  ],
  [
    'terminating(not awaiting) + open.ok is ignored',
    term({ kind: 'wait' }),
    { type: 'open.ok', handle: H },
    term({ kind: 'wait' }),
    [],
  ],
  [
    'terminating(retry) + gone -> wait',
    term({ kind: 'retry', failures: 1 }),
    { type: 'device.gone' },
    term({ kind: 'wait' }),
    [],
  ],
  [
    'terminating(wait) + present B -> start B',
    term({ kind: 'wait' }),
    { type: 'device.present', device: B },
    term({ kind: 'start', device: B }),
    [],
  ],
  [
    'terminating(stop) + present stays stop',
    term({ kind: 'stop' }),
    { type: 'device.present', device: B },
    term({ kind: 'stop' }),
    [],
  ],
  [
    'terminating(stop) + gone stays stop',
    term({ kind: 'stop' }),
    { type: 'device.gone' },
    term({ kind: 'stop' }),
    [],
  ],
  ['terminating + stop -> next stop', term({ kind: 'wait' }), { type: 'stop' }, term({ kind: 'stop' }), []],
  [
    'terminating + probe.ok is ignored',
    term({ kind: 'wait' }),
    { type: 'probe.ok' },
    term({ kind: 'wait' }),
    [],
  ],
  // backoff
  [
    'backoff + timer -> starting next attempt',
    backoff,
    { type: 'timer.fired' },
    { name: 'starting', device: A, attempt: 3, failures: 2 },
    ['open:4#3', 'emit:backoff->starting', 'emit:attempt#3'],
  ],
  [
    'backoff + gone -> waiting',
    backoff,
    { type: 'device.gone' },
    waiting,
    ['cancelTimer', 'emit:backoff->waiting'],
  ],
  ['backoff + stop -> stopped', backoff, { type: 'stop' }, stopped, ['cancelTimer', 'emit:backoff->stopped']],
  ['backoff + present(same) is ignored', backoff, { type: 'device.present', device: A }, backoff, []],
  [
    'backoff + present(other) -> starting now',
    backoff,
    { type: 'device.present', device: B },
    { name: 'starting', device: B, attempt: 1, failures: 0 },
    ['cancelTimer', 'open:5#1', 'emit:backoff->starting', 'emit:attempt#1'],
  ],
  // stopped
  ['stopped + present is ignored', stopped, { type: 'device.present', device: A }, stopped, []],
  ['stopped + stop is ignored', stopped, { type: 'stop' }, stopped, []],
];

describe('session machine', () => {
  it.each(rows)('%s', (_name, from, event, to, effects) => {
    const out = transition(from, event, opts);
    expect(out.state).toEqual(to);
    expect(shape(out.effects)).toEqual(effects);
  });

  it('does not schedule probes when probing is off', () => {
    const out = transition(starting, { type: 'open.ok', handle: H }, { ...opts, probe: false });
    expect(shape(out.effects)).toEqual(['emit:starting->up', 'emit:succeeded#2']);
    expect(transition(up, { type: 'probe.ok' }, { ...opts, probe: false }).effects).toEqual([]);
  });

  it('carries the failing error and reason into the emitted events', () => {
    const out = transition(starting, { type: 'open.failed', error: err }, opts);
    const failed = out.effects.find((e) => e.type === 'emit' && e.event.name === 'reconnect.failed');
    expect(failed).toMatchObject({ event: { error: err, device: A, attempt: 2 } });
    const state = out.effects.find((e) => e.type === 'emit' && e.event.name === 'session.state');
    expect(state).toMatchObject({ event: { reason: 'open failed: REPLUG_USB_BUSY', device: A } });
  });

  it('uses the default 250 ms doubling backoff without options', () => {
    let s: S = { name: 'starting', device: A, attempt: 1, failures: 0 };
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const failed: Transition<typeof H> = transition<typeof H>(s, { type: 'open.failed', error: err });
      if (failed.state.name !== 'backoff') throw new Error('expected backoff');
      delays.push(failed.state.delayMs);
      s = transition<typeof H>(failed.state, { type: 'timer.fired' }).state;
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    expect(s).toMatchObject({ name: 'starting', attempt: 9 });
  });

  it('resets the backoff after a success', () => {
    const upAgain = transition(starting, { type: 'open.ok', handle: H }, opts).state;
    const wedged = transition(upAgain, { type: 'probe.failed', error: err }, opts).state;
    const retry = transition(wedged, { type: 'closed' }, opts).state;
    expect(retry).toMatchObject({ name: 'backoff', failures: 1, delayMs: 250 });
  });
});
