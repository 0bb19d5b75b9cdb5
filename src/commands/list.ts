// Placeholder until the command lands (see the issue that owns it); replaced, not extended.
import type { Command } from '../cli/context.js';
import { ErrorCodes, ReplugError } from '../errors.js';

export const listCommand: Command = {
  name: 'list',
  summary: '',
  async run() {
    throw new ReplugError(ErrorCodes.USAGE, 'replug list is not available in this build yet');
  },
};
