/** The status line a request's outcome becomes (pure). */
import { describe, expect, it } from 'vitest';
import type { AskResult } from '../../../src/control/ask.js';
import { outcomeLine } from '../../../src/fleet/view/outcome.js';

const result = (response?: AskResult['answers'][number]['response']): AskResult => ({
  transaction: 't',
  asked: ['pi-7'],
  answers: response ? [{ agent: 'pi-7', response, ms: 3 }] : [],
  missing: response ? [] : ['pi-7'],
  offline: [],
});

describe('outcomeLine', () => {
  const republish = { action: 'republish' as const, id: 'mqtt://b:1883 pi-7' };
  const reset = { action: 'reset' as const, id: 'mqtt://b:1883 pi-7', target: '1209:0001' };

  it('ok with the republished topic count, or the ladder step that worked', () => {
    expect(outcomeLine(republish, result({ status: 'ok', data: { topics: 12 }, ts: 1 }), 5000)).toBe(
      'republish pi-7: ok, 12 topics',
    );
    const data = { target: '1209:0001', step: 'usb-reset', outcome: 'ok', ms: 840 };
    expect(outcomeLine(reset, result({ status: 'ok', data, ts: 1 }), 30_000)).toBe(
      'reset pi-7 1209:0001: ok, usb-reset in 840 ms',
    );
  });

  it('an error with its stable code and message; no answer names the wait', () => {
    const error = { code: 'REPLUG_HEAL_UNAVAILABLE', message: 'this agent runs no recovery ladder (heal)' };
    expect(outcomeLine(reset, result({ status: 'error', error, ts: 1 }), 30_000)).toBe(
      'reset pi-7 1209:0001: error REPLUG_HEAL_UNAVAILABLE this agent runs no recovery ladder (heal)',
    );
    expect(outcomeLine(republish, result(), 5000)).toBe('republish pi-7: no answer in 5 s');
  });
});
