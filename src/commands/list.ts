/**
 * `replug list`: a one-shot device table like lsusb, plus port path, speed, serial and whether the usbfs
 * node is there and readable. A host without a USB bus is an answer, not an error: one line, exit 0.
 */
import { resolve } from 'node:path';
import { parseFlags, println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { collectListing, formatTable, toJson } from '../usb/listing.js';

const HELP = `Usage: replug list [options]

Lists the USB devices of this host (or of the trees given), like lsusb plus port path,
speed, serial and whether the /dev/bus/usb node is present and readable (NODE column:
ok, missing, no-access, bad). IDs are 4-digit lowercase hex.

Options:
  --json              a JSON array of devices ([] when there is no USB bus)
  --all               include root hubs (usbN)
  --sysfs-root DIR    read sysfs from DIR instead of /sys   (env REPLUG_SYSFS_ROOT)
  --devfs-root DIR    read devfs from DIR instead of /dev   (env REPLUG_DEVFS_ROOT)
  --help              this text

Exit status is 0 when the listing could be made, also when there is no USB bus.`;

const options = {
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  'sysfs-root': { type: 'string' },
  'devfs-root': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const;

function pickRoot(
  flag: string | undefined,
  envValue: string | undefined,
  fallback: string,
  cwd: string,
): string {
  const chosen = [flag, envValue].find((v): v is string => typeof v === 'string' && v !== '');
  return chosen === undefined ? fallback : resolve(cwd, chosen);
}

export const listCommand: Command = {
  name: 'list',
  summary: 'one-shot device list, like lsusb plus port path, serial and speed',
  async run(ctx: CommandContext): Promise<number> {
    const { values } = parseFlags(ctx.argv, options);
    if (values.help) {
      println(ctx.stdout, HELP);
      return ExitCode.OK;
    }
    const sysfsRoot = pickRoot(values['sysfs-root'], ctx.env.REPLUG_SYSFS_ROOT, '/sys', ctx.cwd);
    const devfsRoot = pickRoot(values['devfs-root'], ctx.env.REPLUG_DEVFS_ROOT, '/dev', ctx.cwd);
    const listing = await collectListing({ sysfsRoot, devfsRoot, includeRootHubs: values.all === true });
    if (!listing.bus) {
      const line = `replug: ${listing.reason}; nothing to list (replug doctor explains why)`;
      if (values.json) {
        println(ctx.stdout, '[]');
        println(ctx.stderr, line);
      } else {
        println(ctx.stdout, line);
      }
      return ExitCode.OK;
    }
    if (values.json) println(ctx.stdout, toJson(listing.devices));
    else if (listing.devices.length === 0)
      println(ctx.stdout, 'no USB devices (the bus has only its root hubs)');
    else println(ctx.stdout, formatTable(listing.devices));
    return ExitCode.OK;
  },
};
