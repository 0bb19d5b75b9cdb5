// Placeholder until the command lands (see the issue that owns it); replaced, not extended.
import type { Command } from '../cli/context.js';
import { ErrorCodes, ReplugError } from '../errors.js';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: '',
  async run() {
    throw new ReplugError(ErrorCodes.USAGE, 'replug doctor is not available in this build yet');
  },
};
