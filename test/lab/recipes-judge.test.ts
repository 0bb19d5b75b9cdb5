// The recipes scenario turns doctor's JSON inside each container into predictions and fails the lab when the
// measurement contradicts one. The "open" prediction (can a fresh process open the replugged node?) follows
// doctor's /dev/bus/usb kind, except in a user namespace where the nodes' owner and group are unmapped: there
// doctor's own EACCES says the mode refuses, and a bind-mounted bus must not be read as "yes" (issue 16,
// recipe 5: the userns container measured 0/5).
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM lab code, no types
import { judge } from './scenarios/recipes.mjs';

const doctor = (userns: string, outcome: string) => ({
  summary: 's',
  info: { busUsb: 'bind', userns },
  facts: { cgroup: { openResult: { node: '/dev/bus/usb/001/001', outcome } } },
  verdict: { sources: [] },
});
const rows = (open: string, n = 3) => Array.from({ length: n }, () => ({ open }));
const openPrediction = (r: { predictions: { source: string; says: string; agrees: boolean }[] }) =>
  r.predictions.find((p) => p.source === 'open');

describe('recipes judge: the open prediction', () => {
  it('a bind-mounted bus in a user namespace whose nodes refuse doctor (EACCES) predicts no, and 0/N agrees', () => {
    const r = judge('userns', 'container:u@userns', doctor('own', 'EACCES'), rows('denied'));
    expect(openPrediction(r)).toMatchObject({ says: expect.stringMatching(/^no /), agrees: true });
    expect(r.problems.filter((p: string) => p.includes('/dev/bus/usb'))).toEqual([]);
  });

  it('the same bus in the initial user namespace predicts yes, so 0/N is a contradiction', () => {
    const r = judge('cgroup-rule', 'container:r@cgroup-rule', doctor('initial', 'EACCES'), rows('denied'));
    expect(openPrediction(r)).toMatchObject({ says: expect.stringMatching(/^yes /), agrees: false });
    expect(r.ok).toBe(false);
  });

  it('a user namespace where doctor opened a node still predicts yes', () => {
    const r = judge('userns', 'container:u@userns', doctor('own', 'ok'), rows('open'));
    expect(openPrediction(r)).toMatchObject({ says: expect.stringMatching(/^yes /), agrees: true });
  });
});
