/**
 * `replug doctor`: explain this host or container. It reports and always exits 0: a missing USB bus or a
 * badly configured container is the answer, not an error.
 */
import { resolve } from 'node:path';
import { parseFlags, println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { type CollectOptions, collectFacts } from '../doctor/facts.js';
import { formatReport, runtimeInfo, summarize } from '../doctor/format.js';
import { type DoctorRoots, defaultRoots } from '../doctor/types.js';
import { judge } from '../doctor/verdict.js';

const HELP = `Usage: replug doctor [options]

Explains this host or container: runtime, network namespace, udev, /dev, cgroup device
access, user namespace, USB bus; then, for each detection source, whether it works here
and the exact fix when it does not.

Options:
  --json                    one JSON object: facts, verdicts, summary, info
  --proc-root DIR           read /proc from DIR        (env REPLUG_PROC_ROOT)
  --sys-root DIR            read /sys from DIR         (alias --sysfs-root; env REPLUG_SYSFS_ROOT)
  --dev-root DIR            read /dev from DIR         (alias --devfs-root; env REPLUG_DEVFS_ROOT)
  --run-root DIR            read /run from DIR         (env REPLUG_RUN_ROOT)
  --root DIR                look for /.dockerenv in DIR (env REPLUG_ROOT)
  --help                    this text

Exit status is 0 whatever doctor finds.`;

const options = {
  json: { type: 'boolean' },
  'proc-root': { type: 'string' },
  'sys-root': { type: 'string' },
  'sysfs-root': { type: 'string' },
  'dev-root': { type: 'string' },
  'devfs-root': { type: 'string' },
  'run-root': { type: 'string' },
  root: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const;

export function resolveRoots(
  values: Partial<Record<keyof typeof options, string | boolean | undefined>>,
  env: Record<string, string | undefined>,
  cwd: string,
): DoctorRoots {
  const pick = (flag: unknown, alias: unknown, envValue: string | undefined, fallback: string) => {
    const chosen = [flag, alias, envValue].find((v): v is string => typeof v === 'string' && v !== '');
    return chosen === undefined ? fallback : resolve(cwd, chosen);
  };
  return {
    proc: pick(values['proc-root'], undefined, env.REPLUG_PROC_ROOT, defaultRoots.proc),
    sys: pick(values['sys-root'], values['sysfs-root'], env.REPLUG_SYSFS_ROOT, defaultRoots.sys),
    dev: pick(values['dev-root'], values['devfs-root'], env.REPLUG_DEVFS_ROOT, defaultRoots.dev),
    run: pick(values['run-root'], undefined, env.REPLUG_RUN_ROOT, defaultRoots.run),
    root: pick(values.root, undefined, env.REPLUG_ROOT, defaultRoots.root),
  };
}

/** Factory so tests inject tryOpen (cgroup v2 access can only be learnt by opening a node). */
export function createDoctorCommand(collect: CollectOptions = {}): Command {
  return {
    name: 'doctor',
    summary: 'explain this host or container: which detection paths work here and how to fix the rest',
    async run(ctx: CommandContext): Promise<number> {
      const { values } = parseFlags(ctx.argv, options);
      if (values.help) {
        println(ctx.stdout, HELP);
        return ExitCode.OK;
      }
      const roots = resolveRoots(values, ctx.env, ctx.cwd);
      const facts = await collectFacts(roots, ctx.env, collect);
      const verdict = judge(facts);
      if (values.json) {
        println(
          ctx.stdout,
          JSON.stringify({ summary: summarize(facts), info: runtimeInfo(facts), facts, verdict, roots }),
        );
      } else {
        println(ctx.stdout, formatReport(facts, verdict));
      }
      return ExitCode.OK;
    },
  };
}

export const doctorCommand: Command = createDoctorCommand();
