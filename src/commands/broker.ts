/**
 * `replug broker`: the Aedes broker the agent embeds, run on its own (auth, ACL, TLS, retained state on
 * disk). `replug broker passwd FILE USER` manages its users file. Flags win over REPLUG_* variables.
 */
import path from 'node:path';
import type { BrokerOptions } from '../broker/broker.js';
import { LIMITS, limitsFrom, limitsHelp } from '../broker/guard/limits.js';
import { applyPasswd, readNewPassword } from '../broker/passwd.js';
import { println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { optionLines, renderHelp } from '../cli/help.js';
import { type FileState, kinds, realFileState } from '../cli/kinds.js';
import { commonRows, defineOptions, logLevelRow } from '../cli/options.js';
import { LIMITS_ENV, limitKind } from '../config/broker-limit.js';
import { ConfigError } from '../errors.js';
import { createLogger, type LogLevel } from '../log.js';

export const brokerOptions = defineOptions({
  host: {
    kind: kinds.string('ADDR'),
    aliases: ['broker-host'],
    env: 'REPLUG_BROKER_HOST',
    default: '127.0.0.1',
    help: 'listen address',
  },
  port: {
    kind: kinds.int(0, 65535, 'PORT'),
    aliases: ['broker-port'],
    env: 'REPLUG_BROKER_PORT',
    defaultText: '1883, 8883 with TLS',
    help: 'listen port, 0 = any free',
  },
  users: {
    kind: kinds.file(),
    aliases: ['broker-users'],
    env: 'REPLUG_BROKER_USERS',
    help: 'users file written by `replug broker passwd`; agents publish only under replug/<username>/#, observers subscribe only',
  },
  'allow-anonymous': {
    kind: kinds.flag(),
    env: 'REPLUG_BROKER_ALLOW_ANONYMOUS',
    help: 'accept clients without credentials from anywhere. Without it, anonymous clients are accepted from loopback only, and listening beyond loopback needs --users',
  },
  'tls-cert': {
    kind: kinds.file(),
    env: 'REPLUG_BROKER_TLS_CERT',
    help: 'serve MQTT over TLS with this PEM certificate',
    goesWith: 'tls-key',
  },
  'tls-key': {
    kind: kinds.file(),
    env: 'REPLUG_BROKER_TLS_KEY',
    help: 'its PEM private key',
    goesWith: 'tls-cert',
  },
  'tls-ca': {
    kind: kinds.file(),
    env: 'REPLUG_BROKER_TLS_CA',
    help: 'require client certificates signed by this CA',
    needs: [{ option: 'tls-cert' }, { option: 'tls-key' }],
  },
  'state-dir': {
    kind: kinds.path(),
    env: 'REPLUG_STATE_DIR',
    help: 'keep retained messages and persistent sessions in DIR; without it they live in memory and are lost on restart',
  },
  limit: {
    kind: limitKind,
    multiple: true,
    env: LIMITS_ENV,
    defaultText: 'see the limits below',
    help: `set one abuse limit, repeatable (${Object.keys(LIMITS).length} limits listed below)`,
  },
  'log-level': logLevelRow,
  ...commonRows,
});

export const passwdOptions = defineOptions({
  role: {
    kind: kinds.choice(['agent', 'observer', 'operator'] as const, 'ROLE'),
    help: 'agent (default), observer, or operator (may send requests: replug request)',
  },
  delete: { kind: kinds.flag(), help: 'remove the user' },
  ...commonRows,
});

const HELP = renderHelp({
  usage: [
    'replug broker [options]',
    'replug broker passwd FILE USERNAME [--role agent|observer|operator] [--delete]',
  ],
  description: 'Runs the MQTT broker (Aedes) until SIGINT/SIGTERM. Flags win over variables.',
  options: brokerOptions,
  footer: `${limitsHelp()}

${optionLines(passwdOptions, 'passwd options').slice(1).join('\n')}

passwd reads the password from the terminal without echo, or the first line of stdin when piped:
  printf '%s\\n' "$PW" | replug broker passwd /etc/replug/users pi-kitchen --role agent`,
});

export interface BrokerCommandConfig {
  broker: Omit<BrokerOptions, 'log'>;
  logLevel: LogLevel;
}

/** argv + env -> config, every problem reported at once (habit 6). Files are checked when `fileState` is given. */
export function parseBrokerConfig(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  cwd: string,
  fileState?: (file: string) => FileState,
) {
  const { values: v } = brokerOptions.parse(argv, { env, cwd, ...(fileState ? { fileState } : {}) });
  const cert = v['tls-cert'];
  const key = v['tls-key'];
  const ca = v['tls-ca'];
  const config: BrokerCommandConfig = {
    broker: {
      host: v.host,
      ...(v.port !== undefined ? { port: v.port } : {}),
      ...(v['allow-anonymous'] ? { allowAnonymous: true } : {}),
      ...(v.users ? { usersFile: v.users } : {}),
      ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}) } } : {}),
      ...(v['state-dir'] ? { persistenceDir: v['state-dir'] } : {}),
      ...(v.limit.length > 0 ? { limits: limitsFrom(v.limit) } : {}),
    },
    logLevel: v['log-level'],
  };
  return { help: v.help, config };
}

async function runPasswd(ctx: CommandContext, argv: string[]): Promise<number> {
  const { values, positionals } = passwdOptions.parse(argv, { env: ctx.env, cwd: ctx.cwd }, true);
  if (values.help) {
    ctx.stdout.write(HELP);
    return ExitCode.OK;
  }
  const problems: string[] = [];
  if (positionals.length !== 2) problems.push('passwd needs exactly FILE and USERNAME');
  if (values.delete && values.role !== undefined) problems.push('--delete and --role exclude each other');
  if (problems.length > 0) throw new ConfigError(problems);
  const [fileArg, username] = positionals as [string, string];
  const file = path.resolve(ctx.cwd, fileArg);
  const outcome = await applyPasswd({
    file,
    username,
    ...(values.role ? { role: values.role } : {}),
    ...(values.delete ? { delete: true } : {}),
    password: () => readNewPassword(ctx.stdin, ctx.stderr, username),
  });
  println(ctx.stderr, `replug: ${outcome} user ${username} in ${file}`);
  return ExitCode.OK;
}

export const brokerCommand: Command = {
  name: 'broker',
  summary: 'run the Aedes broker alone: auth, ACL, TLS, retained-state persistence',
  help: HELP,
  tables: [
    { name: 'broker', options: brokerOptions },
    { name: 'broker passwd', options: passwdOptions },
  ],
  async run(ctx: CommandContext): Promise<number> {
    if (ctx.argv[0] === 'passwd') return runPasswd(ctx, ctx.argv.slice(1));
    const { help, config } = parseBrokerConfig(ctx.argv, ctx.env, ctx.cwd, realFileState);
    if (help) {
      ctx.stdout.write(HELP);
      return ExitCode.OK;
    }
    const log = await createLogger({
      level: config.logLevel,
      destination: ctx.stdout,
      base: { component: 'broker' },
    });
    if (!config.broker.persistenceDir) {
      log.warn('no --state-dir: retained messages are kept in memory and lost when the broker stops');
    }
    // Imported lazily so `replug broker passwd` and --help do not load aedes and LevelDB.
    const { startBroker } = await import('../broker/broker.js');
    const broker = await startBroker({ ...config.broker, log });
    if (!ctx.signal.aborted) {
      await new Promise<void>((resolveAbort) =>
        ctx.signal.addEventListener('abort', () => resolveAbort(), { once: true }),
      );
    }
    await broker.close();
    return ExitCode.OK;
  },
};
