/**
 * A real terminal for the view suites: tmux on a private socket (`-L`, so other tmux servers on the
 * machine are never touched), a detached session of a fixed size, keys sent with send-keys and the screen
 * read back with capture-pane (plain text: what a user sees, without escapes).
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function tmuxAvailable(): boolean {
  return spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Under CI a missing tmux fails the suite; on a dev machine it skips, loudly. */
export function requireTmux(): boolean {
  if (tmuxAvailable()) return true;
  if (process.env.CI === 'true') throw new Error('tmux is not installed (apt-get install -y tmux)');
  console.warn(
    '\n!!! tmux not installed: the real-terminal view tests are SKIPPED (apt-get install -y tmux)\n',
  );
  return false;
}

export class Tmux {
  readonly socket = `replug-view-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {}

  private run(args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `command` (a shell line) in a detached session; the pane stays after it exits. */
  start(command: string, env: Record<string, string> = {}): void {
    const vars = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    this.run([
      '-f',
      '/dev/null',
      'new-session',
      '-d',
      '-s',
      'view',
      '-x',
      String(this.cols),
      '-y',
      String(this.rows),
      ...vars,
      command,
    ]);
    this.run(['set-option', '-t', 'view', 'remain-on-exit', 'on']);
    // A session made detached keeps the size it was made with only when no client resizes it.
    this.run(['resize-window', '-t', 'view', '-x', String(this.cols), '-y', String(this.rows)]);
  }

  capture(): string {
    // One line per row: capture-pane ends the last row with a newline too.
    return this.run(['capture-pane', '-p', '-t', 'view']).replace(/\n$/, '');
  }

  /** Keys in tmux's names (`Down`, `PageDown`, `Home`, `End`, `Enter`, `Escape`, `C-c`) or literal text. */
  keys(...keys: string[]): void {
    this.run(['send-keys', '-t', 'view', ...keys]);
  }

  literal(text: string): void {
    this.run(['send-keys', '-t', 'view', '-l', text]);
  }

  /** A tmux format of the pane, e.g. `#{alternate_on}`, `#{pane_dead}`. */
  format(f: string): string {
    return this.run(['display-message', '-p', '-t', 'view', f]).trim();
  }

  async until(predicate: (screen: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = '';
    for (;;) {
      screen = this.capture();
      if (predicate(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  kill(): void {
    try {
      this.run(['kill-server']);
    } catch {
      // already gone
    }
  }
}
