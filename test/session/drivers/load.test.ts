import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, ReplugError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { loadDriver } from '../../../src/session/drivers/load.js';

let dir: string;
const log = silentLogger();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'replug-driver-'));
  const files: Record<string, string> = {
    'object.mjs': `export default { name: 'obj', probeIntervalMs: 50,
      async open(d) { return { d }; }, async probe() {}, async close() {} };`,
    'factory.mjs': `export default ({ log, options }) => ({ name: 'fac:' + options.greeting + ':' + typeof log.info,
      async open() { return 1; }, async probe() {}, async close() {} });`,
    'class.mjs': `class Driver { constructor() { this.prefix = 'h'; }
      async open(d) { return this.prefix + d.address; } async probe() {} async close() {} }
      export default async () => new Driver();`,
    'noname.mjs': `export default { open: async () => 1, probe: async () => {}, close: async () => {} };`,
    'missing-probe.mjs': `export default { name: 'x', open: async () => 1, close: async () => {} };`,
    'no-default.mjs': `export const driver = {};`,
    'syntax.mjs': `export default {{ oops`,
    'throws.mjs': `export default () => { throw new Error('needs a serial port'); };`,
    'bad-interval.mjs': `export default { name: 'b', probeIntervalMs: -5, open: async () => 1, probe: async () => {}, close: async () => {} };`,
    'number.mjs': `export default 42;`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  await mkdir(path.join(dir, 'a-directory.mjs'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function loadError(spec: string): Promise<ReplugError> {
  const err = await loadDriver(spec, { cwd: dir, log }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ReplugError);
  expect((err as ReplugError).code).toBe(ErrorCodes.DRIVER_LOAD);
  expect((err as ReplugError).message).not.toContain('\n');
  return err as ReplugError;
}

const dev = { key: 'k', vid: '1209', pid: '0001', bus: 1, address: 7 };
const ctx = { signal: new AbortController().signal, log };

describe('loadDriver', () => {
  it('loads a default-exported driver object resolved against cwd', async () => {
    const d = await loadDriver('./object.mjs', { cwd: dir, log });
    expect(d.name).toBe('obj');
    expect(d.probeIntervalMs).toBe(50);
    expect(await d.open(dev, ctx)).toEqual({ d: dev });
  });

  it('calls a factory with the logger and options', async () => {
    const d = await loadDriver('factory.mjs', { cwd: dir, log, options: { greeting: 'hi' } });
    expect(d.name).toBe('fac:hi:function');
  });

  it('keeps `this` for class-based drivers and accepts absolute paths', async () => {
    const d = await loadDriver(path.join(dir, 'class.mjs'), { cwd: '/', log });
    expect(await d.open(dev, ctx)).toBe('h7');
  });

  it('names a driver without a name after its file', async () => {
    expect((await loadDriver('noname.mjs', { cwd: dir, log })).name).toBe('noname');
  });

  it.each([
    ['./nope.mjs', /not found \(looked at .*nope\.mjs\)/],
    ['a-directory.mjs', /is not a file/],
    ['missing-probe.mjs', /does not implement probe$/],
    ['no-default.mjs', /has no default export/],
    ['syntax.mjs', /could not be loaded: /],
    ['throws.mjs', /factory in throws\.mjs threw: needs a serial port/],
    ['bad-interval.mjs', /probeIntervalMs -5/],
    ['number.mjs', /exported number, not a driver/],
  ])('fails %s with REPLUG_DRIVER_LOAD and one line', async (spec, pattern) => {
    const err = await loadError(spec);
    expect(err.message).toMatch(pattern);
    expect(err.hint).toBeTruthy();
  });
});
