/** The port every device step implements (hardware behind a port, STYLE habit 2). */
import type { DeviceStep } from '../types.js';
import type { HealTarget } from './sysfs.js';

export interface HealStep {
  readonly name: DeviceStep;
  /** Acts on the target's device; rejects with a ReplugError carrying a HEAL_* code. Never on a non-target. */
  run(target: HealTarget, signal?: AbortSignal): Promise<void>;
}
