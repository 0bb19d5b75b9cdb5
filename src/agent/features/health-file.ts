/**
 * Feature `health-file`: a heartbeat at <state-dir>/health.json, rewritten at start and every
 * --health-interval (at most 30 s apart), for the container's HEALTHCHECK (deploy/docker/healthcheck.mjs calls the agent
 * unhealthy when the file is older than REPLUG_HEALTH_MAX_AGE_MS). Issue 16: the healthcheck read the file
 * but nothing wrote it, so a wedged agent whose process still ran was "healthy" forever.
 *
 * The probe finds the directory the way this feature does (--state-dir, else REPLUG_STATE_DIR), so it is on
 * exactly when a state dir is configured. The file is replaced atomically (write a temp file, rename): the
 * probe never reads half a file. A write that fails is logged once until one works again; it never stops
 * the agent (a full disk must not take the sessions down with it).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Feature, FeatureContext } from '../features.js';
import { healthInput } from '../health.js';

/** The file system calls the feature makes; node:fs/promises by default, a failing one in tests. */
export interface HealthFileFs {
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
  writeFile(path: string, data: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

const nodeFs: HealthFileFs = { mkdir, writeFile, rename };

export const HEALTH_FILE = 'health.json';
const HEARTBEAT_MAX_MS = 30_000;

/** What health.json holds: who wrote it and when, and the same figures as the `health` topic. */
function heartbeat(ctx: FeatureContext): string {
  const relay = ctx.reports.relay;
  return `${JSON.stringify({
    agent: ctx.identity.agent,
    session: ctx.identity.session,
    pid: process.pid,
    writtenAt: new Date(ctx.clock.now()).toISOString(),
    ...healthInput({
      startedAt: ctx.startedAt,
      clock: ctx.clock,
      watcher: ctx.watcher,
      relay: relay ? { stats: relay } : undefined,
      faults: 0,
    }),
  })}\n`;
}

export const healthFile =
  (fs: HealthFileFs = nodeFs): (() => Feature) =>
  () => ({
    name: 'health-file',
    enabled: (config) => config.stateDir !== undefined,
    start(ctx) {
      const dir = ctx.config.stateDir as string;
      const path = join(dir, HEALTH_FILE);
      let failing = false;
      let writing: Promise<void> | undefined;
      const write = () => {
        if (writing) return; // the previous write still runs (a slow disk): skip a beat, never pile up
        const tmp = `${path}.${process.pid}.tmp`;
        writing = fs
          .mkdir(dir, { recursive: true })
          .then(() => fs.writeFile(tmp, heartbeat(ctx)))
          .then(() => fs.rename(tmp, path))
          .then(
            () => {
              if (failing) ctx.log.info(`${path} is written again`);
              failing = false;
            },
            (err: unknown) => {
              if (!failing)
                ctx.log.warn(
                  { err },
                  `cannot write ${path}: the container healthcheck will call this agent unhealthy`,
                );
              failing = true;
            },
          )
          .finally(() => {
            writing = undefined;
          });
      };
      write();
      // At most 30 s apart whatever --health-interval says: the probe's default limit is 120 s.
      ctx.every(Math.min(ctx.config.healthIntervalMs, HEARTBEAT_MAX_MS), 'the health file', write);
      ctx.onStop(() => writing);
    },
  });
