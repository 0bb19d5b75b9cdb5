/**
 * The CLI as a function tests can call: argv in, exit code out. src/bin/replug.ts is the only caller that
 * turns the code into process.exit.
 */
import { ErrorCodes, formatForUser, isReplugError } from '../errors.js';
import type { Command, CommandContext } from './context.js';
import { ExitCode } from './context.js';
import { version } from './version.js';

type Loader = () => Promise<Command>;

// Lazy imports: `replug list` must not pay for loading aedes, and a broken optional module must not break
// unrelated commands.
export const commands: Record<string, { summary: string; load: Loader }> = {
  agent: {
    summary: 'watch USB, keep sessions to target devices, publish to MQTT (embedded broker by default)',
    load: async () => (await import('../commands/agent.js')).agentCommand,
  },
  list: {
    summary: 'one-shot device list, like lsusb plus port path, serial and speed',
    load: async () => (await import('../commands/list.js')).listCommand,
  },
  doctor: {
    summary: 'explain this host or container: which detection paths work here and how to fix the rest',
    load: async () => (await import('../commands/doctor.js')).doctorCommand,
  },
  watch: {
    summary: 'observe a fleet of agents on one or more brokers (live table, --json, --once, --compare)',
    load: async () => (await import('../commands/watch.js')).watchCommand,
  },
  broker: {
    summary: 'run the Aedes broker alone: auth, ACL, TLS, retained-state persistence',
    load: async () => (await import('../commands/broker.js')).brokerCommand,
  },
  request: {
    summary: 'ask one agent or the whole fleet to act (republish, rescan, reset, ...) and print the answers',
    load: async () => (await import('../commands/request.js')).requestCommand,
  },
  relay: {
    summary: 're-broadcast kernel USB uevents in udev format so libusb apps in this container see replugs',
    load: async () => (await import('../commands/relay.js')).relayCommand,
  },
};

export function usage(): string {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(width)}  ${commands[n]?.summary}`);
  return [
    'Usage: replug <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `replug <command> --help` for the options of one command.',
    'Global: --version, --help; --debug (on any command) prints stack traces.',
  ].join('\n');
}

export async function main(argv: string[], ctx: Omit<CommandContext, 'argv'>): Promise<number> {
  const [name, ...rest] = argv;
  const debug = rest.includes('--debug');
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const out = name === undefined ? ctx.stderr : ctx.stdout;
    out.write(`${usage()}\n`);
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (name === '--version' || name === '-v') {
    ctx.stdout.write(`${version()}\n`);
    return ExitCode.OK;
  }
  const entry = commands[name];
  if (!entry) {
    ctx.stderr.write(
      `replug: unknown command "${name}" (commands: ${Object.keys(commands).join(', ')}; see replug --help)\n`,
    );
    return ExitCode.USAGE;
  }
  try {
    const command = await entry.load();
    return await command.run({ ...ctx, argv: rest });
  } catch (err) {
    ctx.stderr.write(`${formatForUser(err)}\n`);
    if (debug && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`);
    if (isReplugError(err) && (err.code === ErrorCodes.CONFIG_INVALID || err.code === ErrorCodes.USAGE)) {
      return ExitCode.USAGE;
    }
    return ExitCode.FAILURE;
  }
}
