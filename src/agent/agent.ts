/**
 * The agent's composition root (the zigbee2mqtt `controller.ts` habit): it only wires. Sources -> watcher
 * -> one typed bus -> sessions -> the same bus -> features, and the features -> MQTT (retained cache and
 * event delivery). Everything that touches the world comes in through AgentDeps, so tests run it on fake
 * trees with a real broker on port 0. Stop runs everything's stop, last first, within STOP_BOUND_MS.
 */
import { appendFileSync } from 'node:fs';
import type { RunningBroker } from '../broker/broker.js';
import { type AgentConfig, STOP_BOUND_MS } from '../config/agent.js';
import { type RuntimeReport, runtimeReport } from '../doctor/index.js';
import type { Logger } from '../log.js';
import { disablePacketNumberCache } from '../mqtt/packet-cache.js';
import { createPublisher, type Publisher } from '../mqtt/publisher.js';
import type { SessionDriver } from '../session/drivers/types.js';
import type { SessionManager } from '../session/manager.js';
import { targetKey } from '../usb/ids.js';
import { setStampSink } from '../usb/stamps.js';
import type { UsbWatcher } from '../usb/watcher.js';
import type { Clock } from '../util/clock.js';
import { nextBootCounter } from './boot-counter.js';
import type { Bus } from './bus.js';
import type { AgentParts } from './features.js';
import { resolveStateDir } from './state-dir.js';
import { Stopper } from './stopper.js';

export interface AgentDeps {
  clock: Clock;
  log: Logger;
  env: Record<string, string | undefined>;
  hostname: string;
  homedir: string;
  version: string;
  cwd: string;
  /** For tests: where the doctor looks for /run and the container marker files. */
  runRoot?: string;
  rootDir?: string;
  /** Aborted on SIGINT/SIGTERM: start-up waits (a --driver module) end at once. */
  signal?: AbortSignal;
}

export interface RunningAgent {
  readonly bus: Bus;
  readonly watcher: UsbWatcher;
  readonly sessions: SessionManager;
  readonly publisher: Publisher;
  readonly broker: RunningBroker | undefined;
  readonly brokerUrl: string;
  readonly session: number;
  readonly stateDir: string;
  readonly features: readonly string[];
  /** Stops everything within STOP_BOUND_MS; idempotent. */
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const { clock, log } = deps;
  const startedAt = clock.monotonic();
  const stopper = new Stopper(clock, log, STOP_BOUND_MS);
  disablePacketNumberCache();
  traceStamps(deps.env, log, stopper);
  try {
    const runRoot = deps.runRoot ?? '/run';
    const roots = { proc: config.procRoot, sys: config.sysfsRoot, dev: config.devfsRoot, run: runRoot };
    const doctorRoots = { ...roots, root: deps.rootDir ?? '/' };
    // Start-up (issue 17): the runtime facts are only needed by the MQTT client (its runtime label), so
    // they are read while the state dir, boot counter and embedded broker come up, not before them.
    const reading = runtimeReport(doctorRoots, deps.env);
    reading.catch(() => {}); // awaited below; a failure there is the start's failure, not unhandled
    const stateDir = await resolveStateDir(config.stateDir, deps.env, deps.homedir);
    const session = await nextBootCounter(stateDir, { log });

    const { broker, brokerUrl } = await embeddedBroker(config, stateDir, deps, stopper);
    const runtime = await reading;
    log.info({ runtime: runtime.info }, `runtime: ${runtime.summary}`);

    // A --driver module that cannot load fails the start before `online` is published: a broker must not
    // see the agent online, then offline. The default driver loads later, with the USB side.
    const userDriver = config.driver ? await loadUserDriver(config, deps) : undefined;
    const publisher = await openMqtt(config, deps, { broker, brokerUrl, session, stateDir, runtime });
    stopper.add('mqtt', () => publisher.stop(1500), 2000);

    // Start-up (issue 17): what `online` needs is loaded above; the USB side and the features (most of the
    // agent's modules) load once the broker has acknowledged `online`, bounded by ONLINE_FIRST_MS. Loaded
    // while the client connected, they held the main thread the embedded broker needs to deliver it (exec
    // -> online at a subscriber: the publish reached it 27 ms after it was written, 9 ms with this wait).
    await onlineFirst(publisher, clock);
    const later = await import('./after-online.js');
    const { AnnouncedStore, FEATURES, openUsb, startFeatures } = later;
    const bus = new later.Bus(log);
    const { watcher, sessions } = await openUsb(config, deps, bus, userDriver);
    stopper.add('bus', bus.follow(watcher));

    const parts: AgentParts = {
      config,
      identity: { agent: config.id, session, version: deps.version, hostname: deps.hostname },
      clock,
      bus,
      publisher,
      watcher,
      sessions,
      runtime,
      broker: { embedded: broker !== undefined, url: brokerUrl },
      announced: await AnnouncedStore.load(stateDir, log),
      startedAt,
      reports: {},
      services: {},
      log,
      runRoot,
      doctorInput: { roots: doctorRoots, env: deps.env },
    };
    const features = await startFeatures(FEATURES, parts, stopper);

    await watcher.start();
    stopper.add('watcher', () => watcher.stop(), 1500);
    sessions.attach(bus.devices('sessions'));
    sessions.start(watcher.current());
    stopper.add('sessions', () => sessions.stop(), 3000);
    bus.emit('agent.ready');

    const what =
      config.targets.length === 0
        ? 'no target: watching devices only'
        : `targets ${config.targets.map(targetKey).join(', ')}`;
    log.info({ features }, `agent ${config.id} started (session ${session}); ${what}`);
    const stop = () => stopper.stop();
    return { bus, watcher, sessions, publisher, broker, brokerUrl, session, stateDir, features, stop };
  } catch (err) {
    await stopper.stop();
    throw err;
  }
}

/**
 * The embedded broker, unless --mqtt names one. Loaded only when it runs: Aedes and its LevelDB
 * persistence are ~8 MB an agent with --mqtt never uses (issue 17, footprint).
 */
async function embeddedBroker(
  config: AgentConfig,
  stateDir: string,
  { clock, log }: AgentDeps,
  stopper: Stopper,
): Promise<{ broker: RunningBroker | undefined; brokerUrl: string }> {
  if (config.mqtt.url) return { broker: undefined, brokerUrl: config.mqtt.url };
  const embedded = await import('./embedded-broker.js');
  const broker = await embedded.startEmbeddedBroker(config, stateDir, log);
  stopper.add('broker', () => embedded.closeEmbeddedBroker(broker, config.id, clock), 1500);
  return { broker, brokerUrl: broker.url };
}

/**
 * How long the USB side waits for the broker's acknowledgement of `online` (the start-up goal, 250 ms):
 * with the broker away or slow it starts anyway, and `online` goes out when the broker is back, as before.
 */
export const ONLINE_FIRST_MS = 250;

async function onlineFirst(publisher: Publisher, clock: Clock): Promise<void> {
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = clock.setTimeout(resolve, ONLINE_FIRST_MS);
  });
  await Promise.race([publisher.retained.acknowledged(publisher.topics.status), bound]);
  if (timer !== undefined) clock.clearTimeout(timer);
}

/**
 * REPLUG_STAMPS=1: one `stamp` log line per stage of every plug (src/usb/stamps.ts); REPLUG_STAMPS=/a/file:
 * one JSON line per stage appended to that file instead, so a slow log consumer (the lab's serial console)
 * cannot stall the agent it measures. Off by default: production logs never carry them.
 */
function traceStamps(env: AgentDeps['env'], log: Logger, stopper: Stopper): void {
  const to = env.REPLUG_STAMPS;
  if (to === undefined || to === '' || to === '0') return;
  if (to.startsWith('/')) {
    setStampSink((s) => appendFileSync(to, `${JSON.stringify(s)}\n`));
  } else {
    const trace = log.child({ module: 'stamps' });
    // Stage and device in the message: the log's repeat guard (src/log-flood.ts) groups lines by message.
    setStampSink((s) => trace.info(s, `stamp ${s.stage} ${s.dev}`));
  }
  stopper.add('stamps', () => void setStampSink(undefined));
}

async function loadUserDriver(config: AgentConfig, deps: AgentDeps): Promise<SessionDriver> {
  const { loadSessionDriver } = await import('./driver.js');
  return loadSessionDriver(config, { log: deps.log, cwd: deps.cwd, clock: deps.clock, signal: deps.signal });
}

/** The MQTT face: the client, the retained cache and the durable event queue (opened now). */
async function openMqtt(
  config: AgentConfig,
  deps: AgentDeps,
  at: {
    broker: RunningBroker | undefined;
    brokerUrl: string;
    session: number;
    stateDir: string;
    runtime: RuntimeReport;
  },
): Promise<Publisher> {
  const publisher = createPublisher({
    url: at.brokerUrl,
    // The embedded broker's one-time credential (src/agent/embedded-broker.ts, issue 11).
    username: at.broker?.localAgent?.username ?? config.mqtt.username,
    password: at.broker?.localAgent?.password ?? config.mqtt.password,
    ca: config.mqtt.cafile,
    cert: config.mqtt.cert,
    key: config.mqtt.key,
    agent: config.id,
    session: at.session,
    version: deps.version,
    runtime: config.runtimeLabel ?? at.runtime.info.runtime ?? 'native',
    stateDir: at.stateDir,
    queueCapacity: config.queueCapacity,
    // Our own broker (aedes 2) speaks MQTT 5 (issue 14): no 3.1.1 fall back needed against it.
    protocol: at.broker ? 5 : 'auto',
    clock: deps.clock,
    log: deps.log,
  });
  await publisher.start();
  return publisher;
}
