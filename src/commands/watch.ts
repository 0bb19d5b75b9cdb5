/**
 * `replug watch`: subscribe to one or more brokers and aggregate every agent under replug/+/# (issue 4).
 * Live table on a TTY, NDJSON with --json, a retained census with --once (+ --expect for monitoring),
 * native-vs-container figures with --compare. Composition root only: the logic is in src/fleet/.
 */
import { println } from '../cli/args.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { kinds, realFileState } from '../cli/kinds.js';
import { commonRows, defineOptions } from '../cli/options.js';
import { ask } from '../control/ask.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_MAX_AGENTS, emptyFleet, reduce } from '../fleet/aggregate.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../fleet/decode.js';
import { startHttpView } from '../fleet/http/server.js';
import { FleetIntake } from '../fleet/intake.js';
import { checkExpectations, normalizedLine, targetMatcher } from '../fleet/output.js';
import { printable } from '../fleet/table.js';
import type { FleetMessage, FleetState } from '../fleet/types.js';
import { type Display, plainFrame, startDisplay, untilAborted } from '../fleet/view/display.js';
import { feedJournal, ViewJournal } from '../fleet/view/journal.js';
import type { AgentRequest } from '../fleet/view/keys.js';
import { agentOf } from '../fleet/view/keys.js';
import { DEFAULT_STALE_FACTOR } from '../fleet/view/model.js';
import { outcomeLine, REQUEST_TIMEOUT_MS } from '../fleet/view/outcome.js';
import type { ViewSources } from '../fleet/view/terminal.js';
import { DEFAULT_MAX_METRIC_AGENTS } from '../metrics/fleet-metrics.js';
import { type Listen, parseListen, type RunningHttp, startMetricsServer } from '../metrics/server.js';
import { openRequester } from '../mqtt/requester.js';
import { type BrokerLink, type SubscriberSettings, subscribe } from '../mqtt/subscriber.js';
import { isValidAgentId, parseTopic } from '../mqtt/topics.js';
import { parseBrokerUrl } from '../mqtt/url.js';
import { parseTargetSpec, targetTopicKey } from '../usb/ids.js';
import { type Clock, systemClock } from '../util/clock.js';

const agentIdKind = kinds.checked('AGENT', (t) =>
  isValidAgentId(t) ? undefined : `agent id "${t}" is not valid; expected [a-z0-9-]+`,
);

const listenKind = kinds.checked('[HOST:]PORT', (t) => {
  const at = parseListen(t);
  return typeof at === 'string' ? at : undefined;
});

export const watchOptions = defineOptions({
  mqtt: {
    kind: kinds.brokerUrl(),
    multiple: true,
    default: ['mqtt://127.0.0.1:1883'],
    help: 'broker to watch; repeat for several',
  },
  json: { kind: kinds.flag(), help: 'NDJSON: one normalized object per received message, for scripts' },
  once: {
    kind: kinds.flag(),
    help: 'print the retained census and exit (waits for retained messages to stop arriving)',
  },
  timeout: {
    kind: kinds.int(1, 3600, 'S'),
    short: 'W',
    default: 5,
    help: 'with --once: wait at most S seconds',
  },
  expect: {
    kind: agentIdKind,
    multiple: true,
    help: 'with --once: exit 1 if AGENT is missing or offline',
    needs: [{ option: 'once', why: 'it sets the exit code of a census' }],
  },
  compare: {
    kind: kinds.flag(),
    help: 'reconnect success and latency per runtime for the same target, and which detection sources worked in each (native vs container)',
  },
  agent: { kind: agentIdKind, multiple: true, help: 'only these agents' },
  target: { kind: kinds.string('SPEC'), multiple: true, help: 'only these targets, vvvv:pppp[:SERIAL]' },
  username: { kind: kinds.string('NAME'), short: 'u', help: 'broker user name' },
  password: { kind: kinds.string('SECRET'), short: 'P', help: 'its password' },
  cafile: { kind: kinds.file(), help: 'CA certificate (PEM) for mqtts://' },
  cert: { kind: kinds.file(), help: 'client certificate (PEM)', goesWith: 'key' },
  key: { kind: kinds.file(), help: 'its private key', goesWith: 'cert' },
  insecure: { kind: kinds.flag(), help: "do not verify the broker's certificate (lab brokers only)" },
  'no-color': { kind: kinds.flag(), help: 'no colours (also NO_COLOR=1)' },
  'max-payload': {
    kind: kinds.int(1, 268_435_455),
    default: DEFAULT_MAX_PAYLOAD_BYTES,
    help: 'reject payloads over N bytes',
  },
  'max-agents': {
    kind: kinds.int(1, 10_000_000),
    default: DEFAULT_MAX_AGENTS,
    help: 'keep at most N agents; past it the least recently seen agent that is not online makes room, else the new one is dropped and counted',
  },
  // issue 19: the fleet views (src/fleet/view, src/fleet/http, src/metrics).
  'stale-after': {
    kind: kinds.int(1, 1000, 'N'),
    default: DEFAULT_STALE_FACTOR,
    help: 'mark an agent STALE when its newest retained state is older than N of its health intervals (learned from two health payloads, else 30 s)',
  },
  http: {
    kind: listenKind,
    help: 'serve the fleet as a live web page on http://HOST:PORT/ (loopback unless HOST is given; no authentication)',
  },
  metrics: {
    kind: listenKind,
    help: 'serve Prometheus metrics of every agent seen on http://HOST:PORT/metrics (loopback unless HOST is given; docs/metrics.md)',
  },
  'metrics-max-agents': {
    kind: kinds.int(1, 1_000_000),
    default: DEFAULT_MAX_METRIC_AGENTS,
    help: 'export at most N agents (the first by id); the rest are counted in replug_metrics_agents_unexported',
  },
  ...commonRows,
});

const HELP = renderHelp({
  usage: ['replug watch [--mqtt URL]... [options]'],
  description: `Subscribes to replug/+/# on every broker and shows each agent: online/offline (late wills ignored by boot
counter), runtime, devices, target sessions, reconnect stats, detection sources, last event.

Keys in the live view: ↑↓ PgUp PgDn Home End (or j k) move, / filter, s sort, Enter detail, Esc back,
q quit; p asks the selected agent to republish its retained state, R asks it to reset its first target
(R again or y sends it, any other key cancels). Requests go to the broker the agent was seen on, with
these credentials (the user needs the operator role); the answer, or "no answer in 5 s" (30 s for a
reset), shows in the status line.`,
  options: watchOptions,
  footer: `Exit codes: 0 ok; 1 with --once when an expected agent is missing/offline, or a broker was unreachable
or refused the subscription; 2 usage error.`,
});

export interface WatchConfig {
  subscriber: SubscriberSettings;
  json: boolean;
  once: boolean;
  onceTimeoutMs: number;
  expect: string[];
  compare: boolean;
  keepTarget: (topicKey: string) => boolean;
  /** --target was given (else keepTarget keeps everything, and events need no parsing for it). */
  filtersTargets: boolean;
  color: boolean;
  maxPayloadBytes: number;
  maxAgents: number;
  staleFactor: number;
  metrics?: Listen;
  http?: Listen;
  metricsMaxAgents: number;
}

export function parseWatchConfig(
  ctx: Pick<CommandContext, 'argv' | 'env' | 'cwd' | 'stdout'>,
  fileState = realFileState,
): WatchConfig | 'help' {
  const { parsed, problems } = watchOptions.read(ctx.argv, { env: ctx.env, cwd: ctx.cwd, fileState });
  const f = parsed.values;
  if (f.help) return 'help';
  const matcher = targetMatcher(f.target);
  if (typeof matcher === 'string') problems.push(matcher);
  if (problems.length > 0) throw new ConfigError(problems);
  const noColor = f['no-color'] || (ctx.env.NO_COLOR ?? '') !== '';
  const agents = f.agent;
  return {
    subscriber: {
      urls: [...new Set(f.mqtt)],
      // --agent narrows the subscription itself, so the broker does not even send the rest.
      filters: agents.length > 0 ? [...new Set(agents)].map((a) => `replug/${a}/#`) : ['replug/+/#'],
      ...(f.username !== undefined ? { username: f.username } : {}),
      ...(f.password !== undefined ? { password: f.password } : {}),
      ...(f.cafile !== undefined ? { cafile: f.cafile } : {}),
      ...(f.cert !== undefined ? { cert: f.cert } : {}),
      ...(f.key !== undefined ? { key: f.key } : {}),
      insecure: f.insecure,
      ...(f.once ? { connectTimeoutMs: Math.min(5000, f.timeout * 1000) } : {}),
    },
    json: f.json,
    once: f.once,
    onceTimeoutMs: f.timeout * 1000,
    expect: f.expect,
    compare: f.compare,
    keepTarget: typeof matcher === 'string' ? () => true : matcher,
    filtersTargets: f.target.length > 0,
    color: !noColor && ctx.stdout.isTTY === true,
    maxPayloadBytes: f['max-payload'],
    maxAgents: f['max-agents'],
    staleFactor: f['stale-after'],
    ...(f.metrics !== undefined ? { metrics: parseListen(f.metrics) as Listen } : {}),
    ...(f.http !== undefined ? { http: parseListen(f.http) as Listen } : {}),
    metricsMaxAgents: f['metrics-max-agents'],
  };
}

/** Quiet period after SUBACK that ends the retained census (like mosquitto_sub --retained-only). */
const CENSUS_QUIET_MS = 300;

export async function runWatch(ctx: CommandContext, clock: Clock = systemClock): Promise<number> {
  const config = parseWatchConfig(ctx);
  if (config === 'help') {
    ctx.stdout.write(HELP);
    return ExitCode.OK;
  }
  let state = emptyFleet();
  const journal = new ViewJournal();
  const live = !config.once && !config.json;
  const tty = ctx.stdout.isTTY === true;
  const out = new LineBuffer(ctx.stdout);
  let display: Display | undefined;
  const servers: RunningHttp[] = [];
  const quit = new AbortController();
  let links: readonly BrokerLink[] = [];
  let dropped = () => 0;
  const sources: ViewSources = {
    state: () => state,
    journal,
    brokers: () => linkView(links),
    dropped: () => dropped(),
    color: config.color,
    staleFactor: config.staleFactor,
    request: (r) => sendRequest(config.subscriber, r, clock),
  };
  const shown = { compare: config.compare, maxAgents: config.maxAgents };
  // The journal feeds the views (table, --http, --metrics); NDJSON alone never reads it, and noting every
  // event cost a tenth of watch's time on a 50,000-event stream (issue 17).
  const journaled = !config.json || config.http !== undefined || config.metrics !== undefined;
  const check = (msg: FleetMessage): 'accepted' | 'rejected' => {
    const parsed = parseTopic(msg.topic);
    if (parsed?.kind === 'target' && !config.keepTarget(parsed.targetKey)) return 'accepted';
    const result = reduce(state, msg, {
      maxPayloadBytes: config.maxPayloadBytes,
      maxAgents: config.maxAgents,
    });
    state = result.state;
    if (journaled) feedJournal(journal, state, msg.broker, result.outcome);
    if (config.json && keepEvent(config, result.outcome)) {
      out.push(normalizedLine(msg, result.outcome, result.lateWill));
    }
    display?.invalidate();
    return result.outcome.ok ? 'accepted' : 'rejected';
  };
  // Messages are queued per source and checked in fair time slices (src/fleet/intake.ts, issue 12).
  const intake = new FleetIntake(check, { clock });
  dropped = () => intake.stats().dropped;
  const subscriber = subscribe(config.subscriber, {
    clock,
    onMessage: (msg) => intake.push(msg),
    onLink(link, change) {
      // The view shows the link (agents behind a lost one become unknown); without a TTY, also one
      // stderr line per change.
      display?.invalidate();
      if (!(live && tty)) linkLine(ctx, config, link, change);
    },
  });
  links = subscriber.links;
  try {
    if (config.once) {
      await subscriber.settled(CENSUS_QUIET_MS, config.onceTimeoutMs, ctx.signal);
      intake.drainAll();
      if (!config.json)
        println(ctx.stdout, plainFrame(sources, shown, ctx.stdout.columns ?? 120, clock.now()));
      await out.flush();
      return verdict(ctx, config, state, subscriber.links);
    }
    servers.push(...(await startServers(ctx, config, sources, () => linkView(links), clock)));
    if (live) display = startDisplay(ctx, clock, sources, shown, () => quit.abort());
    await untilAborted(ctx.signal, quit.signal);
    return ExitCode.OK;
  } finally {
    display?.stop();
    for (const s of servers.splice(0)) await s.close();
    await subscriber.close();
    await out.flush();
  }
}

/**
 * `p` and `R` in the view (issue 18): the request goes to the broker the agent was seen on, with the
 * watch's own credentials, over a short-lived client of its own. The watch's links are subscribers only
 * (no publish, one message handler feeding the intake); a second client keeps them untouched, and its
 * response subscription ends with it. Never rejects: every failure is the status line's text.
 */
async function sendRequest(s: SubscriberSettings, r: AgentRequest, clock: Clock): Promise<string> {
  const what = `${r.action} ${agentOf(r.id)}`;
  const broker = r.id.slice(0, r.id.lastIndexOf(' '));
  const url = s.urls.find((u) => parseBrokerUrl(u).redacted === broker);
  if (!url) return `${what}: not sent, broker ${broker} is not one of --mqtt`;
  const timeoutMs = REQUEST_TIMEOUT_MS[r.action];
  try {
    const link = await openRequester({
      url,
      username: s.username,
      password: s.password,
      cafile: s.cafile,
      cert: s.cert,
      key: s.key,
      connectTimeoutMs: 5000,
    });
    try {
      const fields = r.target !== undefined ? { target: r.target } : {};
      const result = await ask(link, { to: agentOf(r.id), action: r.action, fields, timeoutMs, clock });
      return outcomeLine(r, result, timeoutMs);
    } finally {
      await link.close();
    }
  } catch (err) {
    return `${what}: not sent, ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** --metrics (and --http): started before the view, each said once on stderr with its address. */
async function startServers(
  ctx: CommandContext,
  config: WatchConfig,
  sources: ViewSources,
  links: () => readonly { url: string; ok: boolean }[],
  clock: Clock,
): Promise<RunningHttp[]> {
  const started: RunningHttp[] = [];
  if (config.metrics) {
    const m = await startMetricsServer(config.metrics, { ...sources, links }, config.metricsMaxAgents);
    started.push(m);
    println(ctx.stderr, `replug: metrics on ${m.url}/metrics`);
  }
  if (config.http) {
    const h = await startHttpView(config.http, sources, clock);
    started.push(h);
    println(ctx.stderr, `replug: fleet page on ${h.url}/`);
  }
  return started;
}

/** One stderr line per link change (unreachable, lost, refused, back), stripped of control characters. */
function linkLine(
  ctx: CommandContext,
  config: WatchConfig,
  link: BrokerLink,
  change: 'unreachable' | 'lost' | 'back' | 'refused',
): void {
  if (change === 'back') {
    println(ctx.stderr, printable(`replug: ${link.url} connected again`));
    return;
  }
  const retry = config.once || change === 'refused' ? '' : '; retrying every 1s';
  println(ctx.stderr, printable(`replug: ${link.url} ${link.detail}${retry}`));
}

/** --once's exit code: the expectations met and every link connected and subscribed. */
function verdict(
  ctx: CommandContext,
  config: WatchConfig,
  state: FleetState,
  links: readonly BrokerLink[],
): number {
  const v = checkExpectations(state, config.expect);
  for (const p of v.problems) println(ctx.stderr, printable(`replug: ${p}`));
  // Unreachable, lost or refused (a negative SUBACK: the census would be empty, not healthy).
  const broken = links.filter((l) => l.state !== 'connected');
  return v.ok && broken.length === 0 ? ExitCode.OK : ExitCode.FAILURE;
}

function linkView(links: readonly BrokerLink[]) {
  return links.map((l) => ({ url: l.url, state: l.detail, ok: l.state === 'connected' }));
}

/** --target also narrows the NDJSON event stream: events name their target in CLI form. */
function keepEvent(config: WatchConfig, outcome: ReturnType<typeof reduce>['outcome']): boolean {
  if (!config.filtersTargets || !outcome.ok || outcome.value.kind !== 'event') return true;
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
  help: HELP,
  tables: [{ name: 'watch', options: watchOptions }],
  run: (ctx) => runWatch(ctx),
};
