/**
 * The part of the agent that is loaded after the MQTT client has started (issue 17, start-up): the USB
 * watcher and its sources, the session manager and driver, and every feature. agent.ts imports this
 * module dynamically once the broker has acknowledged `online` (bounded by ONLINE_FIRST_MS), so exec ->
 * `online` pays only for config, logger, broker and MQTT client.
 */

import type { AgentConfig } from '../config/agent.js';
import type { Logger } from '../log.js';
import type { SessionDriver } from '../session/drivers/types.js';
import { createSessionManager } from '../session/manager.js';
import { UsbWatcher } from '../usb/watcher.js';
import type { Clock } from '../util/clock.js';
import type { Bus } from './bus.js';
import { loadSessionDriver } from './driver.js';
import { actions } from './features/actions.js';
import { commands } from './features/commands.js';
import { devicesTopic } from './features/devices.js';
import { events } from './features/events.js';
import { heal } from './features/heal.js';
import { healthTopic } from './features/health.js';
import { healthFile } from './features/health-file.js';
import { homeassistant } from './features/homeassistant.js';
import { infoTopic } from './features/info.js';
import { logLines } from './features/log.js';
import { metrics } from './features/metrics.js';
import { relay } from './features/relay.js';
import { targetStates } from './features/targets.js';
import type { Feature } from './features.js';
import { createSources } from './sources.js';

export { AnnouncedStore } from './announced.js';
export { Bus } from './bus.js';
export { startFeatures } from './features.js';

/** What the agent does, in the order it starts (stopped in reverse). One line adds a feature. */
export const FEATURES: readonly (() => Feature)[] = [
  logLines,
  events,
  infoTopic,
  devicesTopic,
  heal,
  actions,
  targetStates,
  healthTopic,
  healthFile(),
  homeassistant,
  relay,
  commands,
  metrics,
];

/** What openUsb needs of the agent's deps (AgentDeps in agent.ts). */
export interface UsbDeps {
  clock: Clock;
  log: Logger;
  cwd: string;
  signal?: AbortSignal;
}

/** The watcher over every source that works here, and one session per target fed from the bus. */
export async function openUsb(config: AgentConfig, deps: UsbDeps, bus: Bus, driver?: SessionDriver) {
  const { clock, log } = deps;
  const watcher = new UsbWatcher({
    sources: createSources(config, clock, log),
    clock,
    settleMs: config.settleMs,
    onListenerError: (err) => log.error({ err }, 'a device listener failed'),
    onValueCut: (note) => log.warn({ values: note }, note.message),
  });
  const sessions = createSessionManager({
    targets: config.targets,
    driver: driver ?? (await loadSessionDriver(config, { log, cwd: deps.cwd, clock, signal: deps.signal })),
    clock,
    log: log.child({ module: 'session' }),
    emit: bus.sessionSink(),
    backoff: config.backoff,
  });
  return { watcher, sessions };
}
