/**
 * The agent's features (the zigbee2mqtt controller + extensions habit): each one is a module with
 * start(ctx) and, when it holds something the context does not, stop(). A feature talks to the rest only
 * through the one bus and the MQTT face (publisher: retained cache + event delivery), never through
 * another feature. Its listeners and timers belong to its context, which removes them when it stops, so a
 * new capability is one file plus one line in the root's list (agent.ts).
 */
import type { AgentConfig } from '../config/agent.js';
import type { DoctorRoots, RuntimeReport } from '../doctor/index.js';
import type { HealService } from '../heal/runner.js';
import type { Logger } from '../log.js';
import type { Publisher } from '../mqtt/publisher.js';
import type { RelayStats } from '../relay/relay.js';
import type { SessionManager } from '../session/manager.js';
import type { UsbWatcher } from '../usb/watcher.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { AnnouncedStore } from './announced.js';
import type { Bus, BusEvents } from './bus.js';
import type { Stopper } from './stopper.js';

/** What every feature may read and use; the root builds it once. */
export interface AgentParts {
  config: AgentConfig;
  identity: { agent: string; session: number; version: string; hostname: string };
  clock: Clock;
  bus: Bus;
  publisher: Publisher;
  watcher: Pick<UsbWatcher, 'current' | 'stats' | 'sourceStatus' | 'onDevicesChanged' | 'rescan'>;
  sessions: Pick<SessionManager, 'snapshot' | 'get' | 'restart'>;
  runtime: RuntimeReport;
  broker: { embedded: boolean; url: string };
  /** What the agent told the broker and Home Assistant in earlier runs (announced.ts). */
  announced: AnnouncedStore;
  /** Monotonic ms at start. */
  startedAt: number;
  /** Figures a feature offers for `health`: the relay feature puts its counters' reader here. */
  reports: { relay?: () => RelayStats; actions?: () => { ok: number; failed: number; timeout: number } };
  /**
   * Services a feature offers the others (issue 15): `heal` while --heal is on (request a climb or one
   * step for a target key; issue 18's reset request calls it).
   */
  services: { heal?: HealService };
  /** For logs: the agent's root logger. */
  log: Logger;
  /** Paths for parts that read the host (the relay, the doctor). */
  runRoot: string;
  /** What `replug doctor` would read here (the `doctor` request answers with its report, issue 18). */
  doctorInput: { roots: DoctorRoots; env: Record<string, string | undefined> };
}

export interface FeatureContext extends AgentParts {
  /** This feature's logger (`feature` field). */
  log: Logger;
  /** Listens on the bus; removed when the feature stops. */
  on<K extends keyof BusEvents>(event: K, fn: (...args: BusEvents[K]) => void): void;
  /**
   * Runs `fn` every `ms` on the agent's clock until the feature stops. An exception in `fn` is logged once
   * (until a tick works again) and the timer keeps ticking (issue 12: the health timer died of one).
   */
  every(ms: number, what: string, fn: () => void): void;
  /** Releases something when the feature stops (a subscription outside the bus). */
  onStop(fn: () => unknown): void;
}

export interface Feature {
  readonly name: string;
  /** Absent: always on. */
  enabled?(config: AgentConfig): boolean;
  start(ctx: FeatureContext): void | Promise<void>;
}

/** Starts `features` in order; each one's stop goes on `stopper` as soon as it started. */
export async function startFeatures(
  features: readonly (() => Feature)[],
  parts: AgentParts,
  stopper: Stopper,
): Promise<string[]> {
  const started: string[] = [];
  for (const make of features) {
    const feature = make();
    if (feature.enabled && !feature.enabled(parts.config)) continue;
    const scope = new Scope(feature.name, parts);
    stopper.add(`feature ${feature.name}`, () => scope.stop(), 1000);
    await feature.start(scope.context);
    started.push(feature.name);
  }
  return started;
}

class Scope {
  private readonly timers = new Set<TimerHandle>();
  private readonly releases: (() => unknown)[] = [];
  private stopped = false;
  readonly context: FeatureContext;

  constructor(
    private readonly name: string,
    private readonly parts: AgentParts,
  ) {
    const log = parts.log.child({ feature: name });
    this.context = {
      ...parts,
      log,
      on: (event, fn) => parts.bus.on(name, event, fn),
      every: (ms, what, fn) => this.every(ms, what, fn, log),
      onStop: (fn) => void this.releases.push(fn),
    };
  }

  private every(ms: number, what: string, fn: () => void, log: Logger): void {
    let failing = false;
    const tick = () => {
      this.timers.delete(handle);
      if (this.stopped) return;
      try {
        fn();
        if (failing) log.info(`${what} works again`);
        failing = false;
      } catch (err) {
        if (!failing) log.error({ err }, `${what} failed; trying again every ${ms} ms`);
        failing = true;
      }
      if (!this.stopped) {
        handle = this.parts.clock.setTimeout(tick, ms);
        this.timers.add(handle);
      }
    };
    let handle = this.parts.clock.setTimeout(tick, ms);
    this.timers.add(handle);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.parts.bus.off(this.name);
    for (const t of this.timers) this.parts.clock.clearTimeout(t);
    this.timers.clear();
    for (const release of this.releases.splice(0).reverse()) await release();
  }
}
