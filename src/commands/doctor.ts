/**
 * `replug doctor`: explain this host or container. It reports and always exits 0: a missing USB bus or a
 * badly configured container is the answer, not an error.
 */
import { println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { kinds } from '../cli/kinds.js';
import { commonRows, defineOptions, type RawFlags, type Values } from '../cli/options.js';
import { type CollectOptions, collectFacts } from '../doctor/facts.js';
import { formatReport, runtimeInfo, summarize } from '../doctor/format.js';
import { formatHealSection, healSection } from '../doctor/heal.js';
import { checkTlsCert, formatTlsCheck } from '../doctor/tls.js';
import { type DoctorRoots, defaultRoots } from '../doctor/types.js';
import { judge } from '../doctor/verdict.js';
import { ConfigError } from '../errors.js';

export const doctorOptions = defineOptions({
  json: { kind: kinds.flag(), help: 'one JSON object: facts, verdicts, summary, info' },
  'proc-root': {
    kind: kinds.path(),
    env: 'REPLUG_PROC_ROOT',
    default: defaultRoots.proc,
    help: 'read /proc from DIR',
  },
  'sys-root': {
    kind: kinds.path(),
    aliases: ['sysfs-root'],
    env: 'REPLUG_SYSFS_ROOT',
    default: defaultRoots.sys,
    help: 'read /sys from DIR',
  },
  'dev-root': {
    kind: kinds.path(),
    aliases: ['devfs-root'],
    env: 'REPLUG_DEVFS_ROOT',
    default: defaultRoots.dev,
    help: 'read /dev from DIR',
  },
  'run-root': {
    kind: kinds.path(),
    env: 'REPLUG_RUN_ROOT',
    default: defaultRoots.run,
    help: 'read /run from DIR',
  },
  root: {
    kind: kinds.path(),
    env: 'REPLUG_ROOT',
    default: defaultRoots.root,
    help: 'look for /.dockerenv in DIR',
  },
  'tls-cert': {
    kind: kinds.path(),
    env: 'REPLUG_BROKER_TLS_CERT',
    help: "also check the broker's TLS certificate in FILE: expired, not valid yet, or ending within 14 days",
  },
  ...commonRows,
});

const HELP = renderHelp({
  usage: ['replug doctor [options]'],
  description: `Explains this host or container: runtime, network namespace, udev, /dev, cgroup device
access, user namespace, USB bus; then, for each detection source, whether it works here
and the exact fix when it does not.`,
  options: doctorOptions,
  footer: 'Exit status is 0 whatever doctor finds.',
});

/** The roots to read, from flags already split by name (aliases included), variables and defaults. */
export function resolveRoots(
  values: RawFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): DoctorRoots {
  const { parsed, problems } = doctorOptions.resolve(values, { env, cwd });
  if (problems.length > 0) throw new ConfigError(problems);
  return rootsOf(parsed.values);
}

function rootsOf(v: Values<typeof doctorOptions.rows>): DoctorRoots {
  return { proc: v['proc-root'], sys: v['sys-root'], dev: v['dev-root'], run: v['run-root'], root: v.root };
}

/** Factory so tests inject tryOpen (cgroup v2 access can only be learnt by opening a node). */
export function createDoctorCommand(collect: CollectOptions = {}): Command {
  return {
    name: 'doctor',
    summary: 'explain this host or container: which detection paths work here and how to fix the rest',
    help: HELP,
    tables: [{ name: 'doctor', options: doctorOptions }],
    async run(ctx: CommandContext): Promise<number> {
      const { values } = doctorOptions.parse(ctx.argv, { env: ctx.env, cwd: ctx.cwd });
      const roots = rootsOf(values);
      if (values.help) {
        ctx.stdout.write(HELP);
        return ExitCode.OK;
      }
      const facts = await collectFacts(roots, ctx.env, collect);
      const verdict = judge(facts);
      const certFile = values['tls-cert'];
      const tls = certFile ? await checkTlsCert(certFile) : undefined;
      const heal = await healSection(roots);
      if (values.json) {
        const out = { summary: summarize(facts), info: runtimeInfo(facts), facts, verdict, roots, heal };
        println(ctx.stdout, JSON.stringify(tls ? { ...out, tls } : out));
      } else {
        println(ctx.stdout, `${formatReport(facts, verdict)}\n\n${formatHealSection(heal)}`);
        if (tls) println(ctx.stdout, formatTlsCheck(tls));
      }
      return ExitCode.OK;
    },
  };
}

export const doctorCommand: Command = createDoctorCommand();
