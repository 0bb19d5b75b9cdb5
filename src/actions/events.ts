/** What the actions report: one `action.run` event per command or container restart (docs/topics.md). */
import type { ErrorInfo } from '../session/events.js';

/** Why an action ran: the session came up or went down, or a heal step brought it back. */
export type ActionTrigger = 'up' | 'down' | 'heal';

export interface ActionRunEvent {
  target: string;
  trigger: ActionTrigger;
  kind: 'command' | 'restart-container';
  /** The command line (cut to the schema's text bound) or the container name. */
  what: string;
  outcome: 'ok' | 'failed' | 'timeout';
  ms: number;
  /** A command's exit code (absent when it was killed or never started). */
  exitCode?: number;
  /** The signal that ended a command. */
  signal?: string;
  error?: ErrorInfo;
}

export interface ActionEvents {
  'action.run': [ActionRunEvent];
}
