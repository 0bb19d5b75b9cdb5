/**
 * `replug list`: a one-shot device table like lsusb, plus port path, speed, serial and whether the usbfs
 * node is there and readable. A host without a USB bus is an answer, not an error: one line, exit 0.
 */
import { println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { kinds } from '../cli/kinds.js';
import { commonRows, defineOptions } from '../cli/options.js';
import { collectListing, formatTable, toJson } from '../usb/listing.js';

export const listOptions = defineOptions({
  json: { kind: kinds.flag(), help: 'a JSON array of devices ([] when there is no USB bus)' },
  all: { kind: kinds.flag(), help: 'include root hubs (usbN)' },
  'sysfs-root': {
    kind: kinds.path(),
    env: 'REPLUG_SYSFS_ROOT',
    default: '/sys',
    help: 'read sysfs from DIR',
  },
  'devfs-root': {
    kind: kinds.path(),
    env: 'REPLUG_DEVFS_ROOT',
    default: '/dev',
    help: 'read devfs from DIR',
  },
  ...commonRows,
});

const HELP = renderHelp({
  usage: ['replug list [options]'],
  description: `Lists the USB devices of this host (or of the trees given), like lsusb plus port path,
speed, serial and whether the /dev/bus/usb node is present and readable (NODE column:
ok, missing, no-access, bad). IDs are 4-digit lowercase hex.`,
  options: listOptions,
  footer: 'Exit status is 0 when the listing could be made, also when there is no USB bus.',
});

export const listCommand: Command = {
  name: 'list',
  summary: 'one-shot device list, like lsusb plus port path, serial and speed',
  help: HELP,
  tables: [{ name: 'list', options: listOptions }],
  async run(ctx: CommandContext): Promise<number> {
    const { values } = listOptions.parse(ctx.argv, { env: ctx.env, cwd: ctx.cwd });
    if (values.help) {
      ctx.stdout.write(HELP);
      return ExitCode.OK;
    }
    const listing = await collectListing({
      sysfsRoot: values['sysfs-root'],
      devfsRoot: values['devfs-root'],
      includeRootHubs: values.all,
    });
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
