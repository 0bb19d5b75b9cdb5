/**
 * `replug broker`: the Aedes broker the agent embeds, run on its own (auth, ACL, TLS, retained state on
 * disk). `replug broker passwd FILE USER` manages its users file. Flags win over REPLUG_* variables.
 */
import { resolve } from 'node:path';
import type { BrokerOptions } from '../broker/broker.js';
import { applyPasswd, readNewPassword } from '../broker/passwd.js';
import { parseFlags, println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { Problems, parseIntFlag } from '../config/collect.js';
import { ConfigError } from '../errors.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../log.js';

const HELP = `Usage: replug broker [options]
       replug broker passwd FILE USERNAME [--role agent|observer] [--delete]

Runs the MQTT broker (Aedes, MQTT 3.1/3.1.1) until SIGINT/SIGTERM.

Options:
  --host ADDR           listen address (alias --broker-host; env REPLUG_BROKER_HOST; default 127.0.0.1)
  --port N              listen port, 0 = any free (alias --broker-port; env REPLUG_BROKER_PORT;
                        default 1883, 8883 with TLS)
  --users FILE          users file written by \`replug broker passwd\` (alias --broker-users;
                        env REPLUG_BROKER_USERS); agents publish only under replug/<username>/#,
                        observers subscribe only
  --allow-anonymous     accept clients without credentials from anywhere
                        (env REPLUG_BROKER_ALLOW_ANONYMOUS=true). Without it, anonymous clients are
                        accepted from loopback only, and listening beyond loopback needs --users
  --tls-cert FILE       serve MQTT over TLS with this PEM certificate (env REPLUG_BROKER_TLS_CERT)
  --tls-key FILE        its PEM private key (env REPLUG_BROKER_TLS_KEY)
  --tls-ca FILE         require client certificates signed by this CA (env REPLUG_BROKER_TLS_CA)
  --state-dir DIR       keep retained messages and persistent sessions in DIR (env REPLUG_STATE_DIR);
                        without it they live in memory and are lost on restart
  --log-level LEVEL     ${LOG_LEVELS.join(', ')} (env REPLUG_LOG_LEVEL; default info)
  --help                this text

passwd reads the password from the terminal without echo, or the first line of stdin when piped:
  printf '%s\\n' "$PW" | replug broker passwd /etc/replug/users pi-kitchen --role agent`;

const options = {
  host: { type: 'string' },
  'broker-host': { type: 'string' },
  port: { type: 'string' },
  'broker-port': { type: 'string' },
  users: { type: 'string' },
  'broker-users': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const;

export interface BrokerCommandConfig {
  broker: Omit<BrokerOptions, 'log'>;
  logLevel: LogLevel;
}

/** argv + env -> config, every problem reported at once (habit 6). */
export function parseBrokerConfig(argv: string[], env: Record<string, string | undefined>, cwd: string) {
  const { values: f } = parseFlags(argv, options);
  const problems = new Problems();
  const path = (v: string | undefined) => (v === undefined || v === '' ? undefined : resolve(cwd, v));

  const host = f.host ?? f['broker-host'] ?? env.REPLUG_BROKER_HOST ?? '127.0.0.1';
  const portFlag = f.port ?? f['broker-port'];
  const port = parseIntFlag(
    problems,
    portFlag !== undefined ? '--port' : 'REPLUG_BROKER_PORT',
    portFlag ?? env.REPLUG_BROKER_PORT,
    { min: 0, max: 65535 },
  );
  const anonEnv = env.REPLUG_BROKER_ALLOW_ANONYMOUS;
  if (anonEnv !== undefined && !['true', 'false', '1', '0', ''].includes(anonEnv)) {
    problems.add(`REPLUG_BROKER_ALLOW_ANONYMOUS must be true or false, got "${anonEnv}"`);
  }
  const allowAnonymous = f['allow-anonymous'] === true || anonEnv === 'true' || anonEnv === '1';

  const usersFile = path(f.users ?? f['broker-users'] ?? env.REPLUG_BROKER_USERS);
  const persistenceDir = path(f['state-dir'] ?? env.REPLUG_STATE_DIR);
  const cert = path(f['tls-cert'] ?? env.REPLUG_BROKER_TLS_CERT);
  const key = path(f['tls-key'] ?? env.REPLUG_BROKER_TLS_KEY);
  const ca = path(f['tls-ca'] ?? env.REPLUG_BROKER_TLS_CA);
  if ((cert === undefined) !== (key === undefined)) problems.add('--tls-cert and --tls-key go together');
  if (ca !== undefined && cert === undefined) problems.add('--tls-ca needs --tls-cert and --tls-key');

  const logLevel = f['log-level'] ?? env.REPLUG_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.add(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  if (!problems.empty) throw new ConfigError(problems.list);

  const config: BrokerCommandConfig = {
    broker: {
      host,
      ...(port !== undefined ? { port } : {}),
      ...(allowAnonymous ? { allowAnonymous } : {}),
      ...(usersFile ? { usersFile } : {}),
      ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}) } } : {}),
      ...(persistenceDir ? { persistenceDir } : {}),
    },
    logLevel: logLevel as LogLevel,
  };
  return { help: f.help === true, config };
}

const passwdOptions = {
  role: { type: 'string' },
  delete: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const;

async function runPasswd(ctx: CommandContext, argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, passwdOptions, true);
  if (values.help) {
    println(ctx.stdout, HELP);
    return ExitCode.OK;
  }
  const problems: string[] = [];
  if (positionals.length !== 2) problems.push('passwd needs exactly FILE and USERNAME');
  if (values.role !== undefined && values.role !== 'agent' && values.role !== 'observer') {
    problems.push(`--role must be agent or observer, got "${values.role}"`);
  }
  if (values.delete && values.role !== undefined) problems.push('--delete and --role exclude each other');
  if (problems.length > 0) throw new ConfigError(problems);
  const [fileArg, username] = positionals as [string, string];
  const file = resolve(ctx.cwd, fileArg);
  const outcome = await applyPasswd({
    file,
    username,
    ...(values.role ? { role: values.role as 'agent' | 'observer' } : {}),
    ...(values.delete ? { delete: true } : {}),
    password: () => readNewPassword(ctx.stdin, ctx.stderr, username),
  });
  println(ctx.stderr, `replug: ${outcome} user ${username} in ${file}`);
  return ExitCode.OK;
}

export const brokerCommand: Command = {
  name: 'broker',
  summary: 'run the Aedes broker alone: auth, ACL, TLS, retained-state persistence',
  async run(ctx: CommandContext): Promise<number> {
    if (ctx.argv[0] === 'passwd') return runPasswd(ctx, ctx.argv.slice(1));
    const { help, config } = parseBrokerConfig(ctx.argv, ctx.env, ctx.cwd);
    if (help) {
      println(ctx.stdout, HELP);
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
