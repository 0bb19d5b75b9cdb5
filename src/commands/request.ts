/**
 * `replug request AGENT|--all ACTION [--target KEY] [--timeout S] [--json]` (issue 18): asks one agent, or
 * every online agent of the retained census, to act, and prints one line per agent (NDJSON with --json).
 * Exit 0 when all said ok, 1 when any said error (or the broker refused the request), 2 on bad usage,
 * 3 when some did not answer in time (named on stderr).
 */
import { println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { kinds, realFileState } from '../cli/kinds.js';
import { commonRows, defineOptions } from '../cli/options.js';
import { type AskResult, ask } from '../control/ask.js';
import { ACTIONS } from '../control/contract.js';
import { ConfigError, ErrorCodes, ReplugError } from '../errors.js';
import { openRequester } from '../mqtt/requester.js';
import { isValidAgentId } from '../mqtt/topics.js';
import { systemClock } from '../util/clock.js';

export const NO_ANSWER = 3;

export const requestOptions = defineOptions({
  all: {
    kind: kinds.flag(),
    help: 'ask every agent whose retained status is online (one request on replug/_fleet)',
  },
  target: {
    kind: kinds.string('KEY'),
    short: 't',
    help: 'target key vvvv:pppp[:SERIAL] (reset, restart, forget)',
  },
  step: {
    kind: kinds.string('STEP'),
    help: 'reset: run this one step of the recovery ladder, not the whole ladder',
  },
  device: {
    kind: kinds.string('KEY'),
    help: 'forget: a device key (serial:..., port:...) instead of a target',
  },
  timeout: {
    kind: kinds.int(1, 3600, 'S'),
    short: 'W',
    default: 10,
    help: 'wait at most S seconds for the answers',
  },
  json: { kind: kinds.flag(), help: 'NDJSON: one object per agent, {agent, status, data?, error?, ms}' },
  mqtt: { kind: kinds.brokerUrl(), env: 'REPLUG_MQTT_URL', default: 'mqtt://127.0.0.1:1883', help: 'broker' },
  username: {
    kind: kinds.string('NAME'),
    short: 'u',
    env: 'REPLUG_MQTT_USERNAME',
    help: 'an operator of the broker',
  },
  password: { kind: kinds.string('SECRET'), short: 'P', env: 'REPLUG_MQTT_PASSWORD', help: 'its password' },
  cafile: { kind: kinds.file(), help: 'CA certificate (PEM) for mqtts://' },
  cert: { kind: kinds.file(), help: 'client certificate (PEM)', goesWith: 'key' },
  key: { kind: kinds.file(), help: 'its private key', goesWith: 'cert' },
  ...commonRows,
});

const HELP = renderHelp({
  usage: ['replug request AGENT ACTION [options]', 'replug request --all ACTION [options]'],
  description: `Asks an agent (or every online agent) to act, over MQTT, and prints each answer.
Actions: ${ACTIONS.join(', ')} (docs/topics.md, "Requests and responses").
Only the broker's operator users may send requests; agents answer only with commands on (REPLUG_COMMANDS=1,
or a users file on their embedded broker).`,
  options: requestOptions,
  footer: `Exit codes: 0 all answered ok; 1 one said error, or the broker refused the request; 2 usage error;
3 some agents did not answer within --timeout (named on stderr).

Examples
  replug request --all republish -u ops -P "$PW"
  replug request pi-kitchen reset --target 1209:0001 --timeout 30`,
});

interface RequestConfig {
  to: string | { all: true };
  action: string;
  fields: { target?: string; step?: string; device?: string };
  timeoutMs: number;
  json: boolean;
  link: Parameters<typeof openRequester>[0];
}

function parseConfig(ctx: CommandContext): RequestConfig | 'help' {
  const { parsed, problems } = requestOptions.read(
    ctx.argv,
    { env: ctx.env, cwd: ctx.cwd, fileState: realFileState },
    true,
  );
  const v = parsed.values;
  if (v.help) return 'help';
  const pos = parsed.positionals;
  const [agent, action] = v.all ? [undefined, pos[0]] : [pos[0], pos[1]];
  const wanted = v.all ? 1 : 2;
  if (pos.length !== wanted)
    problems.push(v.all ? 'give one ACTION after --all' : 'give AGENT and ACTION (or --all and ACTION)');
  if (agent !== undefined && !isValidAgentId(agent))
    problems.push(`agent id "${agent}" is not valid; expected [a-z0-9-]+`);
  if (action !== undefined && !/^[a-z0-9_-]{1,64}$/.test(action))
    problems.push(`"${action}" is not an action name; actions: ${ACTIONS.join(', ')}`);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    to: v.all ? { all: true } : (agent as string),
    action: action as string,
    fields: {
      ...(v.target !== undefined ? { target: v.target } : {}),
      ...(v.step !== undefined ? { step: v.step } : {}),
      ...(v.device !== undefined ? { device: v.device } : {}),
    },
    timeoutMs: v.timeout * 1000,
    json: v.json,
    link: {
      url: v.mqtt,
      username: v.username,
      password: v.password,
      cafile: v.cafile,
      cert: v.cert,
      key: v.key,
      connectTimeoutMs: Math.min(10_000, v.timeout * 1000),
    },
  };
}

function summary(data: unknown): string {
  if (data === undefined) return '';
  const text = JSON.stringify(data);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** One line per agent (or NDJSON), then the exit code. */
function report(ctx: CommandContext, config: RequestConfig, result: AskResult): number {
  const width = Math.max(8, ...result.asked.map((a) => a.length));
  for (const { agent, response, ms } of result.answers) {
    const { status, data, error } = response;
    if (config.json)
      println(
        ctx.stdout,
        JSON.stringify({
          agent,
          status,
          ...(data !== undefined ? { data } : {}),
          ...(error ? { error } : {}),
          ms,
        }),
      );
    else if (status === 'ok')
      println(ctx.stdout, `${agent.padEnd(width)}  ok     ${config.action}  ${summary(data)}`.trimEnd());
    else println(ctx.stdout, `${agent.padEnd(width)}  error  ${error?.code}: ${error?.message}`);
  }
  for (const agent of result.missing) {
    if (config.json) println(ctx.stdout, JSON.stringify({ agent, status: 'timeout' }));
    else println(ctx.stdout, `${agent.padEnd(width)}  no answer within ${config.timeoutMs / 1000} s`);
  }
  if (result.asked.length === 0)
    ctx.stderr.write('replug: no agent is online in the retained census; nothing was asked\n');
  if (result.missing.length > 0) {
    ctx.stderr.write(
      `replug: no answer within ${config.timeoutMs / 1000} s from ${result.missing.join(', ')}\n`,
    );
    return NO_ANSWER;
  }
  if (result.answers.some((a) => a.response.status !== 'ok')) return ExitCode.FAILURE;
  return result.asked.length === 0 ? ExitCode.FAILURE : ExitCode.OK;
}

export const requestCommand: Command = {
  name: 'request',
  summary: 'ask one agent or the whole fleet to act (republish, rescan, reset, ...) and print the answers',
  help: HELP,
  tables: [{ name: 'request', options: requestOptions }],
  async run(ctx) {
    const config = parseConfig(ctx);
    if (config === 'help') {
      ctx.stdout.write(HELP);
      return ExitCode.OK;
    }
    const link = await openRequester(config.link);
    try {
      const result = await ask(link, { ...config, clock: systemClock }).catch((err: unknown) => {
        throw new ReplugError(
          ErrorCodes.MQTT_AUTH,
          `broker ${link.redacted} refused the request: ${err instanceof Error ? err.message : String(err)}`,
          {
            hint: 'requests need a user whose role is operator; replug broker passwd makes one',
          },
        );
      });
      return report(ctx, config, result);
    } finally {
      await link.close();
    }
  },
};
