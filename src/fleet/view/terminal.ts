/**
 * The interactive fleet view on a terminal (issue 19): raw keyboard input, the alternate screen, a redraw
 * on resize, and the terminal restored on quit (raw mode off, cursor back, normal screen) whatever ends the
 * view: `q`, Ctrl-C (in raw mode the terminal sends it as a byte, not SIGINT), or the command's signal.
 * The painting is LiveScreen's (src/fleet/screen.ts); the lines are renderScreen's.
 */
import type { Clock } from '../../util/clock.js';
import { LiveScreen } from '../screen.js';
import type { FleetState } from '../types.js';
import type { ViewJournal } from './journal.js';
import {
  type AgentRequest,
  decodeKeys,
  describeRequest,
  handleKey,
  initialUi,
  type UiState,
} from './keys.js';
import { renderScreen, type Screen } from './screen-render.js';

type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
type Output = NodeJS.WritableStream & { columns?: number; rows?: number };

export interface ViewSources {
  state: () => FleetState;
  journal: ViewJournal;
  brokers: () => readonly { url: string; state: string; ok: boolean }[];
  dropped: () => number;
  color: boolean;
  staleFactor: number;
  /**
   * Sends a request to an agent and resolves with its outcome as one status line (issue 18); it must
   * not reject. Absent (the web page, tests of the view alone), the keys say requests are unavailable.
   */
  request?: (r: AgentRequest) => Promise<string>;
}

export class TerminalView {
  private ui: UiState = initialUi();
  private last: Screen | undefined;
  private readonly screen: LiveScreen;
  private readonly onData = (chunk: Buffer | string) => this.keys(String(chunk));
  private readonly onResize = () => this.screen.invalidate();
  private running = false;

  constructor(
    private readonly stdin: Input,
    private readonly stdout: Output,
    private readonly clock: Clock,
    private readonly sources: ViewSources,
    private readonly onQuit: () => void,
  ) {
    this.screen = new LiveScreen(stdout, clock, () => this.frame(), { tty: true, refreshMs: 1000 });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stdin.setRawMode?.(true);
    this.stdin.on('data', this.onData);
    this.stdin.resume();
    this.stdout.on('resize', this.onResize);
    this.screen.start();
  }

  invalidate(): void {
    this.screen.invalidate();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.stdin.off('data', this.onData);
    this.stdout.off('resize', this.onResize);
    this.stdin.setRawMode?.(false);
    this.stdin.pause();
    this.screen.stop();
  }

  private frame(): string {
    const s = this.sources;
    this.last = renderScreen({
      state: s.state(),
      journal: s.journal,
      ui: this.ui,
      now: this.clock.now(),
      cols: this.stdout.columns ?? 80,
      rows: this.stdout.rows ?? 24,
      color: s.color,
      brokers: s.brokers(),
      dropped: s.dropped(),
      staleFactor: s.staleFactor,
    });
    return this.last.lines.join('\n');
  }

  private keys(chunk: string): void {
    for (const key of decodeKeys(chunk)) {
      const screen = this.last ?? { ids: [], page: 1, detailLines: 0 };
      const next = handleKey(this.ui, key, screen);
      if (next === 'quit') {
        this.onQuit();
        return;
      }
      const { send, ...ui } = next;
      this.ui = ui;
      if (send) this.send(send);
      // Render now so the next key in the same chunk sees the rows this one produced (a filter, a sort).
      this.frame();
    }
    this.screen.invalidate();
  }

  /** Fire and forget: the view keeps drawing and taking keys while the agent answers (or does not). */
  private send(r: AgentRequest): void {
    const request = this.sources.request;
    if (!request) {
      this.ui = { ...this.ui, notice: `${describeRequest(r)}: requests are not available here` };
      return;
    }
    void request(r)
      .catch((err: unknown) => `${describeRequest(r)}: ${err instanceof Error ? err.message : String(err)}`)
      .then((line) => {
        if (!this.running) return;
        this.ui = { ...this.ui, notice: line };
        this.screen.invalidate();
      });
  }
}
