/**
 * `replug relay`: composition root for the uevent relay (src/relay/relay.ts). Runs until ctx.signal
 * aborts (exit 0) or the relay stops itself (missing CAP_NET_ADMIN, a udevd appeared: exit 1).
 */

import { parseFlags, println } from '../cli/args.js';
import { type Command, type CommandContext, ExitCode } from '../cli/context.js';
import { ConfigError } from '../errors.js';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../log.js';
import { type RelayOptions, type RelayStats, startRelay } from '../relay/relay.js';

export const RELAY_HELP = `Usage: replug relay [options]

Re-broadcasts the kernel's USB uevents in udev's netlink format (group 2) inside this network namespace,
so libusb (udev backend), libudev and usb@3/nusb listeners in this container see devices come and go.
Needs CAP_NET_ADMIN in this network namespace (docker: --cap-add NET_ADMIN, or --privileged) and a
rootful container (kernel uevents do not reach user namespaces). Creates /run/udev/control when missing:
libudev turns its monitor off without it. Refuses to run where a udevd already broadcasts.

Options:
  --all              relay every subsystem, not only usb
  --force            run even where a udevd already broadcasts here (events then arrive twice)
  --probe-ms <ms>    listen this long for a udevd before relaying (default 1000)
  --log-level <l>    ${LOG_LEVELS.join(', ')} (default info)
  --debug            print stack traces on errors
  -h, --help         this help
`;

/** What tests inject: the relay's world and the logger. */
export interface RelayCommandDeps {
  relay?: Omit<RelayOptions, 'allSubsystems' | 'force' | 'probeMs' | 'logger'>;
  logger?: Logger;
}

export function formatStats(s: RelayStats): string {
  return `received ${s.received}, relayed ${s.relayed}, skipped ${s.skipped}, errors ${s.errors}`;
}

export async function runRelay(ctx: CommandContext, deps: RelayCommandDeps = {}): Promise<number> {
  const { values } = parseFlags(ctx.argv, {
    all: { type: 'boolean' },
    force: { type: 'boolean' },
    'probe-ms': { type: 'string' },
    'log-level': { type: 'string' },
    debug: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(RELAY_HELP);
    return ExitCode.OK;
  }
  const problems: string[] = [];
  const probeMs = values['probe-ms'] === undefined ? undefined : Number(values['probe-ms']);
  if (probeMs !== undefined && !(Number.isInteger(probeMs) && probeMs >= 0 && probeMs <= 60_000)) {
    problems.push(`--probe-ms "${values['probe-ms']}" is not a number of milliseconds between 0 and 60000`);
  }
  const level = (values['log-level'] ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    problems.push(`--log-level "${values['log-level']}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const logger =
    deps.logger ??
    (await createLogger({ level, destination: ctx.stderr, pretty: Boolean(ctx.stderr.isTTY) }));
  if (ctx.signal.aborted) return ExitCode.OK;
  const relay = await startRelay({
    ...deps.relay,
    logger,
    allSubsystems: values.all ?? false,
    force: values.force ?? false,
    ...(probeMs === undefined ? {} : { probeMs }),
  });
  const onAbort = () => void relay.stop();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  try {
    await relay.done; // rejects with the ReplugError that stopped it; main prints it as one line
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    println(ctx.stderr, `replug relay: stopped (${formatStats(relay.stats())})`);
  }
  return ExitCode.OK;
}

export const relayCommand: Command = {
  name: 'relay',
  summary: 're-broadcast kernel USB uevents in udev format so libusb apps in this container see replugs',
  run: (ctx) => runRelay(ctx),
};
