/**
 * Feature `actions` (--on-up, --on-down, --on-heal, --restart-container): the user's apps come back too
 * (issue 15). Commands run with the target's facts in the environment (src/actions/env.ts), bounded in
 * time and output (src/actions/command.ts); containers restart through the Docker Engine API
 * (src/docker/client.ts) when the target comes back, but not on the first `up` of this run (the container
 * started with the device). Every action is an `action.run` event; an unreachable engine is said once.
 */
import type { runCommand } from '../../actions/command.js';
import { actionEnv } from '../../actions/env.js';
import type { ActionRunEvent, ActionTrigger } from '../../actions/events.js';
import { actionsFor } from '../../config/heal.js';
import type { DockerClient } from '../../docker/client.js';
import { ErrorCodes, ReplugError } from '../../errors.js';
import { toErrorInfo } from '../../session/error-info.js';
import { targetKey } from '../../usb/ids.js';
import type { UsbDevice } from '../../usb/types.js';
import type { Feature, FeatureContext } from '../features.js';

const MAX_WHAT = 200;

interface Runner {
  /** Loaded only when an action is configured (issue 17, footprint): it brings node:child_process. */
  run: typeof runCommand;
  counts: { ok: number; failed: number; timeout: number };
  engineSaid: boolean;
  docker: DockerClient | undefined;
  inFlight: Set<Promise<void>>;
}

function report(ctx: FeatureContext, r: Runner, e: ActionRunEvent): void {
  r.counts[e.outcome]++;
  const line = `action ${e.kind} for ${e.target} (${e.trigger}): ${e.outcome} after ${e.ms} ms`;
  if (e.outcome === 'ok') ctx.log.info({ event: 'action.run', ...e }, line);
  else ctx.log.warn({ event: 'action.run', ...e }, e.error ? `${line}: ${e.error.message}` : line);
  ctx.bus.emit('action.run', e);
}

async function command(
  ctx: FeatureContext,
  r: Runner,
  target: string,
  trigger: ActionTrigger,
  cmd: string,
  device?: UsbDevice,
) {
  const log = ctx.log.child({ target, action: cmd.slice(0, MAX_WHAT) });
  const res = await r.run({
    command: cmd,
    env: actionEnv(target, trigger, device),
    timeoutMs: ctx.config.actions.timeoutMs,
    clock: ctx.clock,
    line: (stream, text) => log.info({ stream }, `action output: ${text}`),
    cut: (n) => log.info(`action output: ${n} more lines left out`),
  });
  const base = { target, trigger, kind: 'command', what: cmd.slice(0, MAX_WHAT), ms: res.ms } as const;
  const extra = {
    ...(res.exitCode !== undefined ? { exitCode: res.exitCode } : {}),
    ...(res.signal ? { signal: res.signal } : {}),
  };
  const error =
    res.outcome === 'timeout'
      ? { code: ErrorCodes.ACTION_TIMEOUT, message: `killed after ${ctx.config.actions.timeoutMs} ms` }
      : res.outcome === 'failed'
        ? { code: ErrorCodes.ACTION_FAILED, message: res.error ?? `exit code ${res.exitCode ?? res.signal}` }
        : undefined;
  report(ctx, r, { ...base, ...extra, outcome: res.outcome, ...(error ? { error } : {}) });
}

async function restart(ctx: FeatureContext, r: Runner, target: string, trigger: ActionTrigger, name: string) {
  const started = ctx.clock.monotonic();
  const base = { target, trigger, kind: 'restart-container', what: name } as const;
  try {
    await (r.docker as DockerClient).restart(name);
    report(ctx, r, { ...base, outcome: 'ok', ms: Math.round(ctx.clock.monotonic() - started) });
  } catch (err) {
    const unavailable = err instanceof ReplugError && err.code === ErrorCodes.DOCKER_UNAVAILABLE;
    if (unavailable && !r.engineSaid)
      ctx.log.error({ err }, `${(err as ReplugError).message} (${(err as ReplugError).hint})`);
    r.engineSaid ||= unavailable;
    const ms = Math.round(ctx.clock.monotonic() - started);
    report(ctx, r, { ...base, outcome: 'failed', ms, error: toErrorInfo(err) });
  }
}

function track(r: Runner, p: Promise<void>): void {
  r.inFlight.add(p);
  void p.finally(() => r.inFlight.delete(p));
}

/** The commands for `trigger` (containers restart on `up` only, below). */
function fire(ctx: FeatureContext, r: Runner, target: string, trigger: ActionTrigger): void {
  const set = actionsFor(ctx.config.actions, target);
  const device = ctx.sessions.get(target)?.device;
  const cmds = trigger === 'up' ? set.onUp : trigger === 'down' ? set.onDown : set.onHeal;
  for (const cmd of cmds) track(r, command(ctx, r, target, trigger, cmd, device));
}

function anyAction(ctx: FeatureContext): boolean {
  const a = ctx.config.actions;
  const sets = [a.global, ...Object.values(a.byTarget)];
  return sets.some((s) => s.onUp.length + s.onDown.length + s.onHeal.length + s.restartContainers.length > 0);
}

async function checkEngine(ctx: FeatureContext, r: Runner): Promise<void> {
  try {
    await r.docker?.ping();
  } catch (err) {
    r.engineSaid = true;
    const e = err as ReplugError;
    ctx.log.error({ err }, `--restart-container: ${e.message} (${e.hint}); containers will not be restarted`);
  }
}

export const actions = (): Feature => ({
  name: 'actions',
  enabled: (config) => config.targets.length > 0,
  async start(ctx) {
    if (!anyAction(ctx)) return;
    const keys = ctx.config.targets.map(targetKey);
    const wantsDocker = keys.some((k) => actionsFor(ctx.config.actions, k).restartContainers.length > 0);
    // node:child_process and the Docker client (node:http) cost an agent without actions ~2 MB of RSS.
    const { runCommand: run } = await import('../../actions/command.js');
    const docker = wantsDocker
      ? (await import('../../docker/client.js')).createDockerClient({
          socketPath: ctx.config.actions.dockerSocket,
        })
      : undefined;
    const r: Runner = {
      run,
      counts: { ok: 0, failed: 0, timeout: 0 },
      engineSaid: false,
      docker,
      inFlight: new Set(),
    };
    ctx.reports.actions = () => ({ ...r.counts });
    if (docker) await checkEngine(ctx, r);
    const upBefore = new Set<string>();
    const healed = new Set<string>();
    ctx.on('heal.step', (e) => {
      if (e.outcome !== 'up') return;
      healed.add(e.target);
      fire(ctx, r, e.target, 'heal');
    });
    ctx.on('session.state', (e) => {
      if (!keys.includes(e.target)) return;
      if (e.state === 'up') {
        // Back after a replug or a heal: restart the containers; not on this run's first up.
        const trigger = healed.delete(e.target) ? 'heal' : 'up';
        fire(ctx, r, e.target, 'up');
        if (upBefore.has(e.target))
          for (const name of actionsFor(ctx.config.actions, e.target).restartContainers)
            track(r, restart(ctx, r, e.target, trigger, name));
        upBefore.add(e.target);
      } else if (e.previous === 'up') fire(ctx, r, e.target, 'down');
    });
    ctx.onStop(async () => {
      delete ctx.reports.actions;
      await Promise.all([...r.inFlight]);
    });
  },
});
