/**
 * What `replug watch` shows while it runs: the interactive view when both stdin and stdout are terminals
 * (keys need both ends), else the appended table (a pipe, a log) or the --compare table. One object with
 * invalidate/stop, so the command root only says "something changed" and "done".
 */
import type { Clock } from '../../util/clock.js';
import { compareRuntimes } from '../compare.js';
import { renderFrame } from '../render.js';
import { renderCompare } from '../render-compare.js';
import { LiveScreen } from '../screen.js';
import { TerminalView, type ViewSources } from './terminal.js';

type Input = ConstructorParameters<typeof TerminalView>[0];
type Output = ConstructorParameters<typeof TerminalView>[1] & { isTTY?: boolean };

export interface Display {
  invalidate(): void;
  stop(): void;
}

export interface DisplayOptions {
  compare: boolean;
  maxAgents: number;
}

export function startDisplay(
  io: { stdin: Input; stdout: Output },
  clock: Clock,
  sources: ViewSources,
  options: DisplayOptions,
  onQuit: () => void,
): Display {
  const tty = io.stdout.isTTY === true;
  if (tty && io.stdin.isTTY === true && !options.compare) {
    const view = new TerminalView(io.stdin, io.stdout, clock, sources, onQuit);
    view.start();
    return view;
  }
  const frame = () => plainFrame(sources, options, io.stdout.columns ?? 120, clock.now());
  const screen = new LiveScreen(io.stdout, clock, frame, { tty, refreshMs: 1000 });
  screen.start();
  return screen;
}

/** The table without keys: appended to a pipe, printed by --once. */
export function plainFrame(
  sources: ViewSources,
  options: DisplayOptions,
  width: number,
  now: number,
): string {
  return options.compare
    ? renderCompare(compareRuntimes(sources.state()), { width, color: sources.color })
    : renderFrame(sources.state(), {
        width,
        color: sources.color,
        now,
        brokers: sources.brokers(),
        dropped: sources.dropped(),
        maxAgents: options.maxAgents,
      });
}

/** Resolves when any of the signals aborts. */
export function untilAborted(...signals: AbortSignal[]): Promise<void> {
  return new Promise((done) => {
    if (signals.some((s) => s.aborted)) done();
    for (const s of signals) s.addEventListener('abort', () => done(), { once: true });
  });
}
