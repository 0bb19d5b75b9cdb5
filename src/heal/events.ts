/** What the ladder tells the rest: one `heal.step` event per step it ran or refused (docs/topics.md). */
import type { UsbDevice } from '../usb/types.js';
import type { StepRecord } from './types.js';

export interface HealStepEvent extends StepRecord {
  target: string;
  /** The device the step acted on (absent for a refusal before any device was chosen). */
  device?: UsbDevice;
}

export interface HealEvents {
  'heal.step': [HealStepEvent];
}
