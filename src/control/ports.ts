/**
 * What the request handlers act on, as ports (STYLE habit 2): the agent's commands feature implements them
 * from its parts, tests and simulated agents with fakes. Nothing here knows MQTT or the session machine.
 */

/** The recovery ladder (issue 15), when the agent runs it. */
export interface HealService {
  /** Runs the ladder (or only `step`) for the target `key` (`vvvv:pppp[:SERIAL]`). */
  run(key: string, step?: string): Promise<HealRunResult>;
}

export interface HealRunResult {
  /** The step that ended the run (the last one tried). */
  step: string;
  /** `ok`: the target came back; anything else is a failure the response reports as REPLUG_RESET_FAILED. */
  outcome: string;
  ms: number;
}

export interface ControlTarget {
  /** `vvvv:pppp[:SERIAL]` */
  key: string;
  /** Its topic form `vvvv-pppp[-serial]`. */
  topicKey: string;
}

export interface ControlPorts {
  /** The agent's configured targets. */
  targets(): readonly ControlTarget[];
  /** Sends every retained topic again (the whole census); returns how many topics. */
  republish(): number;
  /** Every source re-lists now; resolves when they did, with their names and the devices present after. */
  rescan(): Promise<{ sources: string[]; devices: number }>;
  /** Closes and reopens the target's session; false when no device is present for it. */
  restart(key: string): Promise<{ restarted: boolean; state: string }>;
  /** The report `replug doctor --json` prints, for this agent's roots. */
  doctor(): Promise<unknown>;
  /** The devices present now (what the retained `devices` topic lists). */
  list(): { devices: readonly unknown[]; count: number };
  /** Device keys present now (forget refuses those). */
  presentDeviceKeys(): readonly string[];
  /** Clears the retained topics and Home Assistant components of a target that is not configured here. */
  forgetTarget(topicKey: string): Promise<{ cleared: string[] }>;
  heal?: HealService | undefined;
}

/** What features offer to requests, filled in as they start (AgentParts.services). */
export interface ControlServices {
  heal?: HealService;
}
