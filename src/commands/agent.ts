/**
 * `replug agent`: parse config (every problem at once), ask for IDs like the seed when they are missing on
 * a TTY, start the agent, run until SIGINT/SIGTERM, stop within STOP_BOUND_MS and return 0.
 */
import { once } from 'node:events';
import { homedir, hostname } from 'node:os';
import { startAgent } from '../agent/agent.js';
import type { Command } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { renderHelp } from '../cli/help.js';
import { realFileState } from '../cli/kinds.js';
import { version } from '../cli/version.js';
import { agentOptions, loadAgentConfig, STOP_BOUND_MS } from '../config/agent.js';
import { createLogger, flushRepeats } from '../log.js';
import { systemClock } from '../util/clock.js';

// Rendered when asked for (start-up, issue 17: the agent's path to `online` does not build its help text).
let helpText: string | undefined;
export const agentHelp = (): string =>
  (helpText ??= renderHelp({
    usage: ['replug agent [options]'],
    description: `Watch USB devices, keep a restartable session to each target device across unplug/replug, and publish
device events, session states and reconnect outcomes to MQTT. With no --mqtt, an embedded broker is started.
Flags win over variables, variables over defaults.`,
    options: agentOptions,
    footer: `On SIGINT/SIGTERM the agent publishes "offline", closes its sessions and exits 0 within ${STOP_BOUND_MS / 1000} s,
whatever is in flight (a part that hangs is abandoned with one log line). A second signal exits at once.
Exit codes: 0 stopped cleanly; 1 a runtime failure (an uncaught exception included: systemd or Docker
restart it); 2 bad flags, variables or missing files.

Examples
  replug agent                                   # watch everything, embedded broker on 127.0.0.1:1883
  replug agent -t 1209:0001 --mqtt mqtt://central.local
  replug agent -t 1209:0001 --driver ./my-driver.mjs --driver-option baud=115200
  mosquitto_sub -h 127.0.0.1 -t 'replug/#' -v    # what the agent publishes`,
  }));

export const agentCommand: Command = {
  name: 'agent',
  summary: 'watch USB, keep sessions to target devices, publish to MQTT (embedded broker by default)',
  get help() {
    return agentHelp();
  },
  tables: [{ name: 'agent', options: agentOptions }],
  async run(ctx) {
    const config = loadAgentConfig(ctx.argv, ctx.env, {
      hostname: hostname(),
      cwd: ctx.cwd,
      fileState: realFileState,
    });
    if (config.help) {
      ctx.stdout.write(agentHelp());
      return ExitCode.OK;
    }
    if (config.targetsMissing && ctx.stdin.isTTY) {
      const { promptForTarget } = await import('./seed-prompt.js');
      const answered = await promptForTarget(ctx);
      if (answered === null) return ExitCode.OK;
      if (answered) config.targets.push(answered);
    }
    const pretty =
      config.logFormat === 'pretty' || (config.logFormat === 'auto' && ctx.stdout.isTTY === true);
    const log = await createLogger({ level: config.logLevel, pretty, destination: ctx.stdout });

    // A signal during start-up (a --driver module still loading) is a clean stop, not a failure.
    const agent = await startAgent(config, {
      clock: systemClock,
      log,
      env: ctx.env,
      hostname: hostname(),
      homedir: homedir(),
      version: version(),
      cwd: ctx.cwd,
      signal: ctx.signal,
    }).catch((err: unknown) => {
      if (!ctx.signal.aborted) throw err;
      log.info('stopped during start-up');
      return undefined;
    });
    if (!agent) return ExitCode.OK;
    ctx.onReady?.();
    if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
    log.info('stopping: closing sessions, flushing MQTT');
    await agent.stop();
    flushRepeats(log);
    log.info('stopped');
    return ExitCode.OK;
  },
};
