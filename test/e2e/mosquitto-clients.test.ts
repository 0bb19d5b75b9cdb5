/**
 * The reference-client helpers' own failure paths: a refused connection must come back as an exit code,
 * not as an unhandled EPIPE from writing stdin to a mosquitto_pub that already exited.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/mosquitto.js';
import { clientsAvailable, mosquittoPub } from '../helpers/mosquitto-clients.js';

const available = clientsAvailable('mosquitto client helpers');

describe.skipIf(!available)('mosquittoPub against a closed port', () => {
  it('resolves with a failure exit code, also when stdin is larger than the pipe buffer', async () => {
    const port = await freePort();
    // 1 MiB of stdin: far more than a pipe holds, so the write is still pending when the child exits.
    const big = `${'x'.repeat(1023)}\n`.repeat(1024);
    for (let i = 0; i < 3; i++) {
      const result = await mosquittoPub(['-h', '127.0.0.1', '-p', String(port), '-t', 't', '-l'], {
        stdin: big,
      });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/refused|Error/i);
    }
  });
});
