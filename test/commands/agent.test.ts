/**
 * The agent command's own edges: --help, config errors through main() (exit 2, one line per problem),
 * and the seed's interactive prompt for TEST_VID/TEST_PID on a TTY.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { describeReading, readSeedId } from '../../src/commands/seed-prompt.js';

function io(input = '', tty = false) {
  const stdin = Object.assign(new PassThrough(), { isTTY: tty });
  stdin.end(input);
  let out = '';
  let err = '';
  const stdout = Object.assign(new PassThrough(), { isTTY: false });
  const stderr = new PassThrough();
  stdout.on('data', (d) => {
    out += String(d);
  });
  stderr.on('data', (d) => {
    err += String(d);
  });
  return {
    ctx: { stdin, stdout, stderr, env: {}, signal: new AbortController().signal, cwd: process.cwd() },
    out: () => out,
    err: () => err,
  };
}

describe('replug agent (command)', () => {
  it('prints its help with every group of flags and exits 0', async () => {
    const t = io();
    expect(await main(['agent', '--help'], t.ctx)).toBe(0);
    for (const needle of [
      '--target',
      'TEST_VID',
      '--mqtt',
      '--broker-port',
      '--state-dir',
      '--sysfs-root',
      '--driver',
    ]) {
      expect(t.out()).toContain(needle);
    }
  });

  it('reports every config problem on its own line and exits 2, without a stack trace', async () => {
    const t = io();
    const code = await main(['agent', '--target', 'zz:1', '--broker-port', 'x'], {
      ...t.ctx,
      env: { TEST_VID: '1' },
    });
    expect(code).toBe(2);
    const lines = t.err().trim().split('\n');
    expect(lines).toContain('replug: --broker-port must be a whole number, got "x"');
    expect(
      lines.some((l) => l.startsWith('replug: --target: "zz" in target "zz:1" is not a vendor ID')),
    ).toBe(true);
    expect(t.err()).not.toMatch(/\n\s+at /);
  });

  it('refuses --broker-limit with --mqtt, or with a bad value, in one line and exit 2', async () => {
    const both = io();
    expect(await main(['agent', '--mqtt', 'mqtt://h', '--broker-limit', 'retained-topics=5'], both.ctx)).toBe(
      2,
    );
    // One problem line; the general `hint:` line every config error gets follows it.
    const problems = (t: ReturnType<typeof io>) =>
      t
        .err()
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('replug: hint:'));
    expect(problems(both)).toEqual([
      'replug: --broker-limit sets limits of the embedded broker, which --mqtt replaces; set them on that broker (`replug broker --limit`)',
    ]);
    const bad = io();
    expect(await main(['agent', '--broker-limit', 'retained-topics=x'], bad.ctx)).toBe(2);
    expect(problems(bad)).toEqual([
      'replug: --broker-limit: retained-topics needs a whole number, as in retained-topics=10000',
    ]);
  });

  it('lists --broker-limit and the limit names in its help', async () => {
    const t = io();
    expect(await main(['agent', '--help'], t.ctx)).toBe(0);
    expect(t.out()).toContain('--broker-limit NAME=N');
    expect(t.out()).toContain('REPLUG_BROKER_LIMITS');
    expect(t.out()).toContain('retained-topics');
  });

  it('answers an unknown flag with one line and exit 2', async () => {
    const t = io();
    expect(await main(['agent', '--frobnicate'], t.ctx)).toBe(2);
    expect(t.err()).toMatch(/^replug: Unknown option '--frobnicate'/);
  });

  it('asks for the IDs like the original tool on a TTY; an empty answer skips, Ctrl-D ends cleanly', async () => {
    // stdin closes right after the answers: the prompt sees the end of input at the product question.
    const t = io('4617\n', true);
    const code = await main(['agent', '--state-dir', '/nonexistent/replug-test'], t.ctx);
    expect(t.out()).toContain('Vendor ID not specified in environment. Please enter it (0-65535):');
    expect(t.out()).toContain('Product ID not specified in environment. Please enter it (0-65535):');
    expect(code).toBe(0);
  });

  it('starts with the answered IDs as the target, printed as unsigned hex', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replug-agent-cmd-'));
    const t = io('4617\n34150\n', true);
    const abort = new AbortController();
    const running = main(
      [
        'agent',
        '--state-dir',
        dir,
        '--broker-port',
        '0',
        '--sysfs-root',
        dir,
        '--devfs-root',
        dir,
        '--log-format',
        'json',
      ],
      { ...t.ctx, signal: abort.signal },
    );
    const start = Date.now();
    while (!t.out().includes('agent ') && Date.now() - start < 15_000)
      await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    expect(await running).toBe(0);
    expect(t.out()).toContain('targets 1209:8566');
    await rm(dir, { recursive: true, force: true });
  });

  it('calls onReady once, after it logged started (the bin lets the optimizing compiler back in then)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replug-agent-ready-'));
    const t = io();
    const abort = new AbortController();
    const calls: string[] = [];
    const running = main(
      ['agent', '--state-dir', dir, '--broker-port', '0', '--sysfs-root', dir, '--devfs-root', dir],
      { ...t.ctx, signal: abort.signal, onReady: () => calls.push(t.out()) },
    );
    const start = Date.now();
    while (calls.length === 0 && Date.now() - start < 15_000) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    expect(await running).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/agent \S+ started/);
    await rm(dir, { recursive: true, force: true });
  });

  it('re-asks when the answer is not a number from 0 to 65535', async () => {
    const t = io('70000\nxyz\n', true);
    expect(await main(['agent'], t.ctx)).toBe(0);
    expect(t.err()).toContain('replug: "70000" is not a number from 0 to 65535');
    expect(t.err()).toContain('replug: "xyz" is not a number from 0 to 65535');
  });

  it('reads a prompt answer that is not plain decimal as hex, and says which reading it used', async () => {
    const t = io('0x1209\n', true);
    expect(await main(['agent', '--state-dir', '/nonexistent/replug-test'], t.ctx)).toBe(0);
    expect(t.err()).toContain('replug: read 0x1209 as hex: vendor ID 1209');
    const d = io('1209\n', true);
    expect(await main(['agent'], d.ctx)).toBe(0);
    expect(d.err()).toContain(
      'replug: read 1209 as decimal: vendor ID 04b9 in hex; for hex 1209, type 0x1209',
    );
  });

  it('the seed prompt reads decimal first (the contract), then hex', () => {
    expect(readSeedId('4617')).toEqual({ id: 0x1209, as: 'decimal' });
    expect(readSeedId(' 12ab ')).toEqual({ id: 0x12ab, as: 'hex' });
    expect(readSeedId('0X8566')).toEqual({ id: 0x8566, as: 'hex' });
    expect(readSeedId('65536')).toBeUndefined();
    expect(readSeedId('xyz')).toBeUndefined();
    expect(describeReading('product', '12ab', { id: 0x12ab, as: 'hex' })).toBe(
      'replug: read 12ab as hex: product ID 12ab',
    );
    expect(describeReading('vendor', '9999', { id: 9999, as: 'decimal' })).toBe(
      'replug: read 9999 as decimal: vendor ID 270f in hex; for hex 9999, type 0x9999',
    );
  });
});

describe('replug agent and replug broker: flags naming files that are not there', () => {
  const missing = '/nonexistent/replug-missing';
  it.each([
    [['agent', '--broker-users', missing], '--broker-users'],
    [['agent', '--cafile', missing, '--mqtt', 'mqtts://127.0.0.1:1'], '--cafile'],
    [['agent', '--driver', missing], '--driver'],
    [['broker', '--tls-cert', missing, '--tls-key', missing], '--tls-cert'],
    [['broker', '--users', missing], '--users'],
  ])('%j: exit 2, one line naming the flag and the file, before anything starts', async (argv, flag) => {
    const t = io();
    expect(await main(argv, t.ctx)).toBe(2);
    const lines = t.err().trim().split('\n');
    expect(lines[0]).toBe(`replug: ${flag}: ${missing}: no such file`);
    expect(lines.slice(1).every((l) => l.startsWith('replug: hint: ') || l.includes('no such file'))).toBe(
      true,
    );
    expect(t.out()).toBe('');
  });

  it('a flag at the end without its value is one line, exit 2', async () => {
    const t = io();
    expect(await main(['agent', '--target'], t.ctx)).toBe(2);
    expect(t.err()).toBe(
      'replug: --target needs a value (VID:PID[:SERIAL])\nreplug: hint: run with --help to see every flag and variable\n',
    );
  });
});
