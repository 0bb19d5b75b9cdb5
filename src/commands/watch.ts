/**
 * `replug watch`: subscribe to one or more brokers and aggregate every agent under replug/+/# (issue 4).
 * Live table on a TTY, NDJSON with --json, a retained census with --once (+ --expect for monitoring),
 * native-vs-container figures with --compare. Composition root only: the logic is in src/fleet/.
 */
import { resolve } from 'node:path';
import { parseFlags, println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { Problems, parseIntFlag } from '../config/collect.js';
import { ConfigError } from '../errors.js';
import { emptyFleet, reduce } from '../fleet/aggregate.js';
import { compareRuntimes } from '../fleet/compare.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../fleet/decode.js';
import { checkExpectations, normalize, targetMatcher } from '../fleet/output.js';
import { renderFrame } from '../fleet/render.js';
import { renderCompare } from '../fleet/render-compare.js';
import { LiveScreen } from '../fleet/screen.js';
import type { FleetMessage } from '../fleet/types.js';
import { type BrokerLink, type SubscriberSettings, subscribe } from '../mqtt/subscriber.js';
import { isValidAgentId, parseTopic } from '../mqtt/topics.js';
import { parseTargetSpec, targetTopicKey } from '../usb/ids.js';
import { type Clock, systemClock } from '../util/clock.js';

const HELP = `Usage: replug watch [--mqtt URL]... [options]

Subscribes to replug/+/# on every broker and shows each agent: online/offline (late wills ignored by boot
counter), runtime, devices, target sessions, reconnect stats, detection sources, last event.

Options:
  --mqtt URL          broker to watch; repeat for several (default mqtt://127.0.0.1:1883)
  --json              NDJSON: one normalized object per received message, for scripts
  --once              print the retained census and exit (waits for retained messages to stop arriving)
  -W, --timeout S     with --once: wait at most S seconds (default 5)
  --expect AGENT      with --once: exit 1 if AGENT is missing or offline (repeatable)
  --compare           reconnect success and latency per runtime for the same target, and which
                      detection sources worked in each (native vs container)
  --agent ID          only these agents (repeatable)
  --target SPEC       only these targets, vvvv:pppp[:SERIAL] (repeatable)
  -u, --username U    broker user name          -P, --password P   its password
  --cafile FILE       CA certificate (PEM) for mqtts://
  --cert FILE         client certificate (PEM)  --key FILE         its private key
  --insecure          do not verify the broker's certificate (lab brokers only)
  --no-color          no colours (also NO_COLOR=1)
  --max-payload N     reject payloads over N bytes (default ${DEFAULT_MAX_PAYLOAD_BYTES})
  --help              this text

Exit codes: 0 ok; 1 with --once when an expected agent is missing/offline or a broker was unreachable;
2 usage error.`;

const options = {
  mqtt: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  once: { type: 'boolean' },
  timeout: { type: 'string', short: 'W' },
  expect: { type: 'string', multiple: true },
  compare: { type: 'boolean' },
  agent: { type: 'string', multiple: true },
  target: { type: 'string', multiple: true },
  username: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'P' },
  cafile: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  'max-payload': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
} as const;

export interface WatchConfig {
  subscriber: SubscriberSettings;
  json: boolean;
  once: boolean;
  onceTimeoutMs: number;
  expect: string[];
  compare: boolean;
  keepTarget: (topicKey: string) => boolean;
  color: boolean;
  maxPayloadBytes: number;
}

export function parseWatchConfig(
  ctx: Pick<CommandContext, 'argv' | 'env' | 'cwd' | 'stdout'>,
): WatchConfig | 'help' {
  const { values: f } = parseFlags(ctx.argv, options);
  if (f.help) return 'help';
  const problems = new Problems();
  const agents = f.agent ?? [];
  for (const a of [...agents, ...(f.expect ?? [])]) {
    if (!isValidAgentId(a)) problems.add(`agent id "${a}" is not valid; expected [a-z0-9-]+`);
  }
  const matcher = targetMatcher(f.target ?? []);
  if (typeof matcher === 'string') problems.add(matcher);
  const timeoutS = parseIntFlag(problems, '--timeout', f.timeout, { min: 1, max: 3600 });
  const maxPayload = parseIntFlag(problems, '--max-payload', f['max-payload'], { min: 1, max: 268_435_455 });
  if (f.expect && !f.once) problems.add('--expect needs --once (it sets the exit code of a census)');
  if (!problems.empty) throw new ConfigError(problems.list);
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(ctx.cwd, p));
  const noColor = f['no-color'] === true || (ctx.env.NO_COLOR ?? '') !== '';
  return {
    subscriber: {
      urls: [...new Set(f.mqtt ?? ['mqtt://127.0.0.1:1883'])],
      // --agent narrows the subscription itself, so the broker does not even send the rest.
      filters: agents.length > 0 ? [...new Set(agents)].map((a) => `replug/${a}/#`) : ['replug/+/#'],
      ...(f.username !== undefined ? { username: f.username } : {}),
      ...(f.password !== undefined ? { password: f.password } : {}),
      ...(f.cafile !== undefined ? { cafile: path(f.cafile) } : {}),
      ...(f.cert !== undefined ? { cert: path(f.cert) } : {}),
      ...(f.key !== undefined ? { key: path(f.key) } : {}),
      insecure: f.insecure === true,
      ...(f.once ? { connectTimeoutMs: Math.min(5000, (timeoutS ?? 5) * 1000) } : {}),
    },
    json: f.json === true,
    once: f.once === true,
    onceTimeoutMs: (timeoutS ?? 5) * 1000,
    expect: f.expect ?? [],
    compare: f.compare === true,
    keepTarget: typeof matcher === 'string' ? () => true : matcher,
    color: !noColor && ctx.stdout.isTTY === true,
    maxPayloadBytes: maxPayload ?? DEFAULT_MAX_PAYLOAD_BYTES,
  };
}

/** Quiet period after SUBACK that ends the retained census (like mosquitto_sub --retained-only). */
const CENSUS_QUIET_MS = 300;

export async function runWatch(ctx: CommandContext, clock: Clock = systemClock): Promise<number> {
  const config = parseWatchConfig(ctx);
  if (config === 'help') {
    println(ctx.stdout, HELP);
    return ExitCode.OK;
  }
  let state = emptyFleet();
  const live = !config.once && !config.json;
  const tty = ctx.stdout.isTTY === true;
  const out = new LineBuffer(ctx.stdout);
  let screen: LiveScreen | undefined;
  let links: readonly BrokerLink[] = [];
  const width = () => ctx.stdout.columns ?? 120;
  const frame = () =>
    config.compare
      ? renderCompare(compareRuntimes(state), { width: width(), color: config.color })
      : renderFrame(state, {
          width: width(),
          color: config.color,
          now: clock.now(),
          brokers: linkView(links),
        });

  const onMessage = (msg: FleetMessage) => {
    const parsed = parseTopic(msg.topic);
    if (parsed?.kind === 'target' && !config.keepTarget(parsed.targetKey)) return;
    const result = reduce(state, msg, { maxPayloadBytes: config.maxPayloadBytes });
    state = result.state;
    if (config.json && keepEvent(config, result.outcome)) {
      out.push(JSON.stringify(normalize(msg, result.outcome, result.lateWill)));
    }
    screen?.invalidate();
  };
  const subscriber = subscribe(config.subscriber, {
    clock,
    onMessage,
    onLink(link, change) {
      // In the live view the broker line shows the link; elsewhere one stderr line per change.
      if (live && tty) screen?.invalidate();
      else if (change === 'back') println(ctx.stderr, `replug: ${link.url} connected again`);
      else
        println(ctx.stderr, `replug: ${link.url} ${link.detail}${config.once ? '' : '; retrying every 1s'}`);
    },
  });
  links = subscriber.links;
  try {
    if (config.once) {
      await subscriber.settled(CENSUS_QUIET_MS, config.onceTimeoutMs, ctx.signal);
      if (!config.json) println(ctx.stdout, frame());
      await out.flush();
      const verdict = checkExpectations(state, config.expect);
      for (const p of verdict.problems) println(ctx.stderr, `replug: ${p}`);
      const unreachable = subscriber.links.filter((l) => l.state !== 'connected');
      return verdict.ok && unreachable.length === 0 ? ExitCode.OK : ExitCode.FAILURE;
    }
    if (live) {
      screen = new LiveScreen(ctx.stdout, clock, frame, { tty });
      screen.start();
    }
    await new Promise<void>((done) => {
      if (ctx.signal.aborted) done();
      else ctx.signal.addEventListener('abort', () => done(), { once: true });
    });
    return ExitCode.OK;
  } finally {
    screen?.stop();
    await subscriber.close();
    await out.flush();
  }
}

function linkView(links: readonly BrokerLink[]) {
  return links.map((l) => ({ url: l.url, state: l.detail, ok: l.state === 'connected' }));
}

/** --target also narrows the NDJSON event stream: events name their target in CLI form. */
function keepEvent(config: WatchConfig, outcome: ReturnType<typeof reduce>['outcome']): boolean {
  if (!outcome.ok || outcome.value.kind !== 'event') return true;
  const target = (outcome.value.payload as { target?: unknown }).target;
  if (typeof target !== 'string') return true;
  const spec = parseTargetSpec(target);
  return typeof spec === 'string' || config.keepTarget(targetTopicKey(spec));
}

/**
 * Batches NDJSON lines into one write per event-loop turn: a write per message costs more than the
 * message itself at 50k msg/s. Waits for 'drain' when the reader is slow, so memory stays bounded by
 * what the broker sends meanwhile.
 */
class LineBuffer {
  private lines: string[] = [];
  private scheduled = false;
  private writing: Promise<void> = Promise.resolve();
  constructor(private readonly stream: NodeJS.WritableStream) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }
  flush(): Promise<void> {
    if (this.lines.length === 0) return this.writing;
    const chunk = `${this.lines.join('\n')}\n`;
    this.lines = [];
    this.writing = this.writing.then(
      () =>
        new Promise<void>((done) => {
          if (this.stream.write(chunk)) done();
          else this.stream.once('drain', () => done());
        }),
    );
    return this.writing;
  }
}

export const watchCommand: Command = {
  name: 'watch',
  summary: 'observe a fleet of agents on one or more brokers (live table, --json, --once, --compare)',
  run: (ctx) => runWatch(ctx),
};
