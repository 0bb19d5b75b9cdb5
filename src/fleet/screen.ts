/**
 * Paints frames on a terminal without flicker: the alternate screen (the user's scrollback is back on
 * exit), cursor home, each line followed by erase-to-end-of-line, then erase-below. Nothing is cleared
 * before drawing, so a frame never shows blank. Frames are produced lazily and at most `fps` times a
 * second, and written only when they differ from the last one: a message storm costs one render per tick.
 * Without a TTY (a pipe, a log) frames are appended, separated by a blank line, at most once a second.
 */
import type { Clock, TimerHandle } from '../util/clock.js';

const ALT_ON = '\x1b[?1049h\x1b[?25l';
const ALT_OFF = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const EOL = '\x1b[K';
const BELOW = '\x1b[J';

export interface ScreenOptions {
  tty: boolean;
  /** Frames per second at most; default 10 on a TTY, 1 otherwise. */
  fps?: number;
  /**
   * Redraw at least this often even without a change (ages like "seen 12s ago" move on their own); the
   * frame is only written when it differs. Off by default.
   */
  refreshMs?: number;
}

export class LiveScreen {
  private last = '';
  private lastPaint = Number.NEGATIVE_INFINITY;
  private timer: TimerHandle | undefined;
  private refresh: TimerHandle | undefined;
  private started = false;
  private readonly interval: number;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly clock: Clock,
    private readonly produce: () => string,
    private readonly options: ScreenOptions,
  ) {
    this.interval = 1000 / (options.fps ?? (options.tty ? 10 : 1));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.options.tty) this.out.write(ALT_ON);
    this.paint();
    const every = this.options.refreshMs;
    if (every !== undefined) {
      const tick = () => {
        this.invalidate();
        this.refresh = this.clock.setTimeout(tick, every);
      };
      this.refresh = this.clock.setTimeout(tick, every);
    }
  }

  /** Something changed: paint now if the last paint is old enough, else once at the next tick. */
  invalidate(): void {
    if (!this.started || this.timer) return;
    const wait = this.lastPaint + this.interval - this.clock.monotonic();
    if (wait <= 0) this.paint();
    else
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.paint();
      }, wait);
  }

  /** Leaves the alternate screen and prints the final frame on the normal one, so it stays readable. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.refresh) this.clock.clearTimeout(this.refresh);
    this.refresh = undefined;
    if (this.options.tty) this.out.write(`${ALT_OFF}${this.produce()}\n`);
  }

  private paint(): void {
    this.lastPaint = this.clock.monotonic();
    const frame = this.produce();
    if (frame === this.last) return;
    this.last = frame;
    if (this.options.tty) {
      this.out.write(`${HOME}${frame.split('\n').join(`${EOL}\n`)}${EOL}${BELOW}`);
    } else {
      this.out.write(`${frame}\n\n`);
    }
  }
}
