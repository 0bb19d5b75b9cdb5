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

  it('re-asks when the answer is not a number from 0 to 65535', async () => {
    const t = io('70000\nabc\n', true);
    expect(await main(['agent'], t.ctx)).toBe(0);
    expect(t.err()).toContain('replug: "70000" is not a number from 0 to 65535');
    expect(t.err()).toContain('replug: "abc" is not a number from 0 to 65535');
  });
});
