/**
 * `replug agent`: parse config (every problem at once), ask for IDs like the seed when they are missing on
 * a TTY, start the agent, run until SIGINT/SIGTERM, stop cleanly and return 0.
 */

import { once } from 'node:events';
import { homedir, hostname } from 'node:os';
import { startAgent } from '../agent/agent.js';
import { agentHelp } from '../agent/help.js';
import type { Command, CommandContext } from '../cli/context.js';
import { ExitCode } from '../cli/context.js';
import { version } from '../cli/main.js';
import { createPrompter } from '../cli/prompt.js';
import { type AgentConfig, loadAgentConfig } from '../config/agent.js';
import { createLogger } from '../log.js';
import { hex4, parseDecimalId } from '../usb/ids.js';
import { systemClock } from '../util/clock.js';

/**
 * The original .NET tool asked for TEST_VID/TEST_PID on the console when they were missing; keep its
 * words. An empty answer skips: the agent then watches devices without a target session.
 */
async function promptForTarget(ctx: CommandContext, config: AgentConfig): Promise<boolean> {
  const prompter = createPrompter(ctx.stdin, ctx.stdout, ctx.signal);
  // undefined: skipped (empty answer); null: input ended or Ctrl-C.
  const ask = async (what: 'Vendor' | 'Product'): Promise<number | undefined | null> => {
    for (;;) {
      const answer = await prompter.ask(
        `${what} ID not specified in environment. Please enter it (0-65535):`,
      );
      if (answer === undefined) return null;
      if (answer.trim() === '') return undefined;
      const id = parseDecimalId(answer);
      if (id !== undefined) return id;
      ctx.stderr.write(`replug: "${answer.trim()}" is not a number from 0 to 65535\n`);
    }
  };
  try {
    const vid = await ask('Vendor');
    if (vid === null) return false;
    if (vid === undefined) return true;
    const pid = await ask('Product');
    if (pid === null) return false;
    if (pid !== undefined) config.targets.push({ vid: hex4(vid), pid: hex4(pid) });
    return true;
  } finally {
    prompter.close();
  }
}

export const agentCommand: Command = {
  name: 'agent',
  summary: 'watch USB, keep sessions to target devices, publish to MQTT (embedded broker by default)',
  async run(ctx) {
    const config = loadAgentConfig(ctx.argv, ctx.env, { hostname: hostname() });
    if (config.help) {
      ctx.stdout.write(agentHelp);
      return ExitCode.OK;
    }
    if (config.targetsMissing && ctx.stdin.isTTY) {
      if (!(await promptForTarget(ctx, config))) return ExitCode.OK;
    }
    const pretty =
      config.logFormat === 'pretty' || (config.logFormat === 'auto' && ctx.stdout.isTTY === true);
    const log = await createLogger({ level: config.logLevel, pretty, destination: ctx.stdout });

    const agent = await startAgent(config, {
      clock: systemClock,
      log,
      env: ctx.env,
      hostname: hostname(),
      homedir: homedir(),
      version: version(),
      cwd: ctx.cwd,
    });
    if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
    log.info('stopping: closing sessions, flushing MQTT');
    await agent.stop();
    log.info('stopped');
    return ExitCode.OK;
  },
};
