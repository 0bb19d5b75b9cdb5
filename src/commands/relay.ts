/**
 * `replug relay`: composition root for the uevent relay (src/relay/relay.ts). Runs until ctx.signal
 * aborts (exit 0) or the relay stops itself (missing CAP_NET_ADMIN, a udevd appeared: exit 1).
 */

import { println } from '../cli/args.js';
import { type Command, type CommandContext, ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { rehint } from '../cli/hints.js';
import { kinds } from '../cli/kinds.js';
import { commonRows, defineOptions, logLevelRow } from '../cli/options.js';
import { ErrorCodes } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { type RelayOptions, type RelayStats, type RunningRelay, startRelay } from '../relay/relay.js';

export const relayOptions = defineOptions({
  all: { kind: kinds.flag(), help: 'relay every subsystem, not only usb' },
  force: {
    kind: kinds.flag(),
    help: 'run even where a udevd already broadcasts here (events then arrive twice)',
  },
  'probe-ms': {
    kind: kinds.int(0, 60_000, 'MS'),
    default: 1000,
    help: 'listen this long for a udevd before relaying',
  },
  'log-level': logLevelRow,
  ...commonRows,
});

export const RELAY_HELP = renderHelp({
  usage: ['replug relay [options]'],
  description: `Re-broadcasts the kernel's USB uevents in udev's netlink format (group 2) inside this network namespace,
so libusb (udev backend), libudev and usb@3/nusb listeners in this container see devices come and go.
Needs CAP_NET_ADMIN in this network namespace (docker: --cap-add NET_ADMIN, or --privileged) and a
rootful container (kernel uevents do not reach user namespaces). Creates /run/udev/control when missing:
libudev turns its monitor off without it. Refuses to run where a udevd already broadcasts.`,
  options: relayOptions,
});

/** What tests inject: the relay's world and the logger. */
export interface RelayCommandDeps {
  relay?: Omit<RelayOptions, 'allSubsystems' | 'force' | 'probeMs' | 'logger'>;
  logger?: Logger;
  /** Called once the relay runs (tests watch its stats through it). */
  onStarted?: (relay: RunningRelay) => void;
}

export function formatStats(s: RelayStats): string {
  return `received ${s.received}, relayed ${s.relayed}, skipped ${s.skipped}, errors ${s.errors}`;
}

const forceHint = (err: unknown) =>
  rehint(err, ErrorCodes.RELAY_UDEV_PRESENT, (e) => `${e.hint}; use --force to relay anyway`);

export async function runRelay(ctx: CommandContext, deps: RelayCommandDeps = {}): Promise<number> {
  const { values } = relayOptions.parse(ctx.argv, { env: ctx.env, cwd: ctx.cwd });
  if (values.help) {
    ctx.stdout.write(RELAY_HELP);
    return ExitCode.OK;
  }
  const level = values['log-level'];
  const logger =
    deps.logger ??
    (await createLogger({ level, destination: ctx.stderr, pretty: Boolean(ctx.stderr.isTTY) }));
  if (ctx.signal.aborted) return ExitCode.OK;
  const relay = await startRelay({
    ...deps.relay,
    logger,
    allSubsystems: values.all,
    force: values.force,
    probeMs: values['probe-ms'],
  }).catch((err: unknown) => {
    throw forceHint(err);
  });
  deps.onStarted?.(relay);
  const onAbort = () => void relay.stop();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  try {
    await relay.done; // rejects with the ReplugError that stopped it; main prints it as one line
  } catch (err) {
    throw forceHint(err);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    println(ctx.stderr, `replug relay: stopped (${formatStats(relay.stats())})`);
  }
  return ExitCode.OK;
}

export const relayCommand: Command = {
  name: 'relay',
  summary: 're-broadcast kernel USB uevents in udev format so libusb apps in this container see replugs',
  help: RELAY_HELP,
  tables: [{ name: 'relay', options: relayOptions }],
  run: (ctx) => runRelay(ctx),
};
