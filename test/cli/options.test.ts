/** The option-table machinery: precedence, problems (all at once, one line each), generated help. */
import { describe, expect, it } from 'vitest';
import { renderHelp } from '../../src/cli/help.js';
import { kinds } from '../../src/cli/kinds.js';
import { commonRows, defineOptions } from '../../src/cli/options.js';
import { ConfigError } from '../../src/errors.js';

const table = defineOptions({
  port: { kind: kinds.int(0, 65535, 'PORT'), env: 'X_PORT', default: 1883, help: 'listen port' },
  host: { kind: kinds.string('HOST'), aliases: ['broker-host'], env: 'X_HOST', help: 'listen address' },
  tag: { kind: kinds.string('TAG'), short: 't', multiple: true, env: 'X_TAGS', help: 'a tag' },
  users: { kind: kinds.file(), env: 'X_USERS', help: 'users file' },
  cert: { kind: kinds.file(), help: 'certificate', goesWith: 'key' },
  key: { kind: kinds.file(), help: 'its key', goesWith: 'cert' },
  ca: { kind: kinds.file(), help: 'CA', needs: [{ option: 'cert', why: 'TLS first' }] },
  verbose: { kind: kinds.flag(), short: 'v', env: 'X_VERBOSE', help: 'more' },
  ...commonRows,
});

const ctx = { env: {}, cwd: '/srv' };

function problems(argv: string[], env: Record<string, string> = {}, fileState = () => 'file' as const) {
  return table.read(argv, { env, cwd: '/srv', fileState }).problems;
}

describe('option tables', () => {
  it('flag > variable > default, with aliases, shorts, repeats and comma-separated variables', () => {
    const d = table.parse([], ctx).values;
    expect(d).toMatchObject({ port: 1883, host: undefined, tag: [], verbose: false, help: false });
    const e = table.parse([], { ...ctx, env: { X_PORT: '2000', X_TAGS: 'a, b,,c', X_VERBOSE: '1' } });
    expect(e.values).toMatchObject({ port: 2000, tag: ['a', 'b', 'c'], verbose: true });
    expect(e.where('port')).toBe('X_PORT');
    const f = table.parse(['--port=3000', '--broker-host', 'h', '-t', 'x', '-ty', '-vh'], {
      ...ctx,
      env: { X_PORT: '2000', X_HOST: 'envhost' },
    });
    expect(f.values).toMatchObject({ port: 3000, host: 'h', tag: ['x', 'y'], verbose: true, help: true });
    expect(f.where('host')).toBe('--broker-host');
    expect(f.from).toMatchObject({ port: 'flag', host: 'flag', users: 'default' });
  });

  it('an empty variable counts as unset', () => {
    expect(table.parse([], { ...ctx, env: { X_PORT: '' } }).values.port).toBe(1883);
  });

  it('reports every problem at once, each on one line naming the flag or the variable', () => {
    const p = problems(['--port', 'x', '--bogus', '--host'], { X_TAGS: 'ok', X_VERBOSE: 'maybe' });
    expect(p).toEqual([
      "Unknown option '--bogus'",
      '--host needs a value (HOST)',
      '--port must be a whole number, got "x"',
      'X_VERBOSE must be true or false, got "maybe"',
    ]);
    for (const line of p) expect(line).not.toContain('\n');
  });

  it('a missing value before another flag is one line, not three (node parseArgs says "ambiguous")', () => {
    expect(problems(['--host', '--port', '1'])).toEqual([
      '--host needs a value (HOST); for a value that starts with a dash, write --host=VALUE',
    ]);
    expect(problems(['-t'])).toEqual(['-t needs a value (TAG)']);
    expect(problems(['--verbose=yes'])).toEqual(['--verbose takes no value (got "yes")']);
    expect(problems(['stray'])).toEqual(['unexpected argument "stray": this command takes options only']);
    expect(problems(['--hots', 'x'])[0]).toBe("Unknown option '--hots'; did you mean --host?");
  });

  it('checks files only when asked, with one sentence per file and the path resolved against cwd', () => {
    expect(table.parse(['--users', 'u'], ctx).values.users).toBe('/srv/u');
    expect(problems(['--users', 'u'], {}, () => 'missing' as never)).toEqual([
      '--users: /srv/u: no such file',
    ]);
    expect(problems([], { X_USERS: '/etc/u' }, () => 'directory' as never)).toEqual([
      'X_USERS: /etc/u: is a directory, not a file',
    ]);
  });

  it('relations: needs and goes-with, reported at the row that has them', () => {
    expect(problems(['--cert', 'c'])).toEqual(['--cert and --key go together']);
    expect(problems(['--ca', 'a'])).toEqual(['--ca needs --cert (TLS first)']);
    expect(problems(['--ca', 'a', '--cert', 'c', '--key', 'k'])).toEqual([]);
  });

  it('a ConfigError carries every problem and the --help hint', () => {
    expect(() => table.parse(['--port', '70000'], ctx)).toThrow(ConfigError);
    try {
      table.parse(['--port', '70000'], ctx);
    } catch (err) {
      expect((err as ConfigError).problems).toEqual(['--port must be between 0 and 65535, got 70000']);
      expect((err as ConfigError).hint).toContain('--help');
    }
  });

  it('refuses a table whose relations name a row it does not have', () => {
    expect(() => defineOptions({ a: { kind: kinds.flag(), help: 'a', goesWith: 'b' } })).toThrow(
      /unknown --b/,
    );
  });

  it('--help shows every row with its short flag, aliases, metavar, default, repeatability and variable', () => {
    const help = renderHelp({ usage: ['x [options]'], description: 'Does x.', options: table });
    expect(help).toMatch(/^Usage: x \[options\]\n\nDoes x\.\n\nOptions\n/);
    expect(help).toContain('      --port PORT                listen port\n');
    expect(help).toContain('default 1883; env X_PORT');
    expect(help).toContain('--host, --broker-host HOST');
    expect(help).toContain('  -t, --tag TAG');
    expect(help).toContain('repeatable; env X_TAGS (comma-separated)');
    expect(help).toContain('  -h, --help');
    for (const name of Object.keys(table.rows)) expect(help).toContain(`--${name}`);
  });
});
