/**
 * The agent's composition root (the zigbee2mqtt `controller.ts` habit): wires sources -> watcher ->
 * sessions -> one typed event bus -> MQTT publisher and log. Everything that touches the world comes in
 * through AgentDeps, so tests run it on fake trees with a real broker on port 0.
 */
import { EventEmitter } from 'node:events';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { type RunningBroker, startBroker } from '../broker/broker.js';
import { rehint } from '../cli/hints.js';
import type { AgentConfig } from '../config/agent.js';
import { runtimeReport } from '../doctor/index.js';
import { ErrorCodes } from '../errors.js';
import { AGENT_EVENT_NAMES, type AgentEvents } from '../events.js';
import type { Logger } from '../log.js';
import { createPublisher, type Publisher } from '../mqtt/publisher.js';
import type { RunningRelay } from '../relay/relay.js';
import { createSessionManager, type SessionManager } from '../session/manager.js';
import { targetKey } from '../usb/ids.js';
import type { SourceName } from '../usb/types.js';
import { UsbWatcher } from '../usb/watcher.js';
import type { Clock } from '../util/clock.js';
import { faults } from '../util/faults.js';
import { nextBootCounter } from './boot-counter.js';
import { loadSessionDriver } from './driver.js';
import { healthInput } from './health.js';
import { logAgentEvents } from './log-events.js';
import { infoRuntime } from './runtime-info.js';
import { createSources, isRealTree } from './sources.js';
import { resolveStateDir } from './state-dir.js';
import { toTargetSnapshot } from './target-state.js';

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
}

export interface RunningAgent {
  readonly events: EventEmitter<AgentEvents>;
  readonly watcher: UsbWatcher;
  readonly sessions: SessionManager;
  readonly publisher: Publisher;
  readonly broker: RunningBroker | undefined;
  readonly brokerUrl: string;
  readonly session: number;
  readonly stateDir: string;
  stop(): Promise<void>;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const { clock, log } = deps;
  const startedAt = clock.monotonic();
  const cleanups: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, 'error while stopping');
      }
    }
  };

  try {
    const stateDir = await resolveStateDir(config.stateDir, deps.env, deps.homedir);
    const session = await nextBootCounter(stateDir);

    const report = await runtimeReport(
      {
        proc: config.procRoot,
        sys: config.sysfsRoot,
        dev: config.devfsRoot,
        run: deps.runRoot ?? '/run',
        root: deps.rootDir ?? '/',
      },
      deps.env,
    );
    log.info({ runtime: report.info }, `runtime: ${report.summary}`);

    const faultCount = { n: 0 };
    const onFault = (f: { kind: string; error: unknown }) => {
      faultCount.n++;
      log.error({ err: f.error, kind: f.kind }, `${f.kind} inside a dependency; the agent carries on`);
    };
    faults.on('fault', onFault);
    cleanups.push(() => void faults.off('fault', onFault));

    // Broker: an existing one (--mqtt), or the embedded Aedes.
    let broker: RunningBroker | undefined;
    if (!config.mqtt.url) {
      broker = await startBroker({
        host: config.broker.host,
        port: config.broker.port,
        allowAnonymous: config.broker.allowAnonymous,
        usersFile: config.broker.users,
        persistenceDir: join(stateDir, 'broker'),
        log: log.child({ module: 'broker' }),
      }).catch((err: unknown) => {
        throw rehint(
          err,
          ErrorCodes.BROKER_PORT_IN_USE,
          (e) =>
            `${e.details?.url ? `another broker is probably running there: use it with --mqtt ${e.details.url}, or ` : ''}choose another port with --broker-port`,
        );
      });
      cleanups.push(() => broker?.close());
      const subHost = broker.address.host === '0.0.0.0' ? '127.0.0.1' : broker.address.host;
      log.info(
        `see what the agent publishes: mosquitto_sub -h ${subHost} -p ${broker.address.port} -t 'replug/#' -v`,
      );
    }
    const brokerUrl = config.mqtt.url ?? (broker as RunningBroker).url;

    const events = new EventEmitter<AgentEvents>();
    cleanups.push(() => void events.removeAllListeners());
    cleanups.push(logAgentEvents(events, log));

    const runtimeKind = report.info.runtime ?? 'native';
    const publisher = createPublisher({
      url: brokerUrl,
      username: config.mqtt.username,
      password: config.mqtt.password,
      ca: config.mqtt.cafile,
      cert: config.mqtt.cert,
      key: config.mqtt.key,
      agent: config.id,
      session,
      version: deps.version,
      runtime: config.runtimeLabel ?? runtimeKind,
      stateDir,
      queueCapacity: config.queueCapacity,
      // Our own broker (aedes 2) speaks MQTT 5 (issue 14): no 3.1.1 fall back needed against it.
      protocol: broker ? 5 : 'auto',
      ...(config.homeassistant ? { homeassistant: {} } : {}),
      clock,
      log,
    });
    await publisher.start();
    cleanups.push(() => publisher.stop());

    // Every agent event goes to MQTT through the durable queue.
    for (const name of AGENT_EVENT_NAMES) {
      const fn = (data: AgentEvents[typeof name][0]) => {
        try {
          publisher.publishEvent(name, data as never);
        } catch (err) {
          log.error({ err, event: name }, 'could not queue event');
        }
      };
      events.on(name, fn as never);
    }

    const sources = createSources(config, clock, log);
    const watcher = new UsbWatcher({
      sources,
      clock,
      settleMs: config.settleMs,
      onListenerError: (err) => log.error({ err }, 'a device listener failed'),
    });
    for (const name of ['device.added', 'device.removed', 'device.detection', 'source.status'] as const) {
      watcher.on(name, ((data: unknown) => events.emit(name, data as never)) as never);
    }
    // "No USB bus" is normal (a VM, this CI machine): the watcher says it once for all sources, and
    // again when a bus appears.
    watcher.on('usb.bus', (state) => {
      if (!state.present)
        log.warn(`${state.reason}; replug keeps running and starts watching when a bus appears`);
      else log.info('a USB bus appeared; watching it');
    });
    const publishDevices = () => publisher.setDevices(watcher.current());
    watcher.on('device.added', publishDevices);
    watcher.on('device.removed', publishDevices);
    cleanups.push(() => void watcher.removeAllListeners());

    const driver = await loadSessionDriver(config, { log, cwd: deps.cwd, clock });
    const sessions = createSessionManager({
      targets: config.targets,
      driver,
      clock,
      log: log.child({ module: 'session' }),
      emit: (name, ...args) =>
        (events.emit as (n: string, ...a: unknown[]) => boolean).call(events, name, ...args),
      backoff: config.backoff,
    });
    const publishTarget = (target: string) => {
      const snap = sessions.get(target);
      if (snap) publisher.setTargetState(toTargetSnapshot(snap));
    };
    events.on('session.state', ({ target }) => publishTarget(target));
    events.on('reconnect.failed', ({ target }) => publishTarget(target));
    events.on('reconnect.succeeded', ({ target }) => publishTarget(target));

    let relay: RunningRelay | undefined;
    if (config.relay) {
      const { startRelay } = await import('../relay/relay.js');
      relay = await startRelay({
        logger: log.child({ module: 'relay' }),
        clock,
        procRoot: config.procRoot,
        sysfsRoot: config.sysfsRoot,
        runRoot: deps.runRoot ?? '/run',
      }).catch((err: unknown) => {
        throw rehint(err, ErrorCodes.RELAY_UDEV_PRESENT, (e) => `${e.hint}; leave out --relay`);
      });
      cleanups.push(() => relay?.stop());
    }

    const publishInfo = () =>
      publisher.setInfo({
        agent: config.id,
        version: deps.version,
        host: deps.hostname,
        arch: arch(),
        platform: platform(),
        node: process.version,
        pid: process.pid,
        runtime: infoRuntime(report.info, config.runtimeLabel),
        sources: Object.entries(watcher.sourceStatus()).map(([name, st]) => ({
          name: name as SourceName,
          state: st.state,
          ...(st.state === 'unavailable' ? { reason: st.reason, code: st.code } : {}),
        })),
        targets: config.targets.map(targetKey),
        broker: { embedded: broker !== undefined, url: brokerUrl.replace(/\/\/[^@/]*@/, '//') },
      });
    events.on('source.status', publishInfo);

    await watcher.start();
    cleanups.push(() => watcher.stop());
    sessions.attach(watcher);
    sessions.start(watcher.current());
    cleanups.push(() => sessions.stop());
    publishInfo();
    publishDevices();
    for (const snap of sessions.snapshot()) publisher.setTargetState(toTargetSnapshot(snap));
    if (!isRealTree(config)) log.info(`watching the tree at ${config.sysfsRoot} and ${config.devfsRoot}`);

    const publishHealth = () =>
      publisher.setHealth(healthInput({ startedAt, clock, watcher, relay, faults: faultCount.n }));
    publishHealth();
    let healthTimer = clock.setTimeout(function tick() {
      publishHealth();
      healthTimer = clock.setTimeout(tick, config.healthIntervalMs);
    }, config.healthIntervalMs);
    cleanups.push(() => clock.clearTimeout(healthTimer));

    log.info(
      `agent ${config.id} started (session ${session}); ${config.targets.length === 0 ? 'no target: watching devices only' : `targets ${config.targets.map(targetKey).join(', ')}`}`,
    );

    let stopping: Promise<void> | undefined;
    return {
      events,
      watcher,
      sessions,
      publisher,
      broker,
      brokerUrl,
      session,
      stateDir,
      stop: () => {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
