/**
 * A driver call raced against a deadline on the injected clock. Drivers are user code (`--driver`) and
 * USB I/O can block in the kernel until a URB times out, so the session never awaits a driver unbounded.
 */
import { ErrorCodes, ReplugError } from '../errors.js';
import type { Clock } from '../util/clock.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Resolves (never rejects) with the call's outcome, or a REPLUG_USB_TIMEOUT failure after `ms`. On timeout
 * `onTimeout` runs first (abort the driver's signal); a value that arrives later goes to `late`, so a
 * handle opened too late can still be closed instead of leaking.
 */
export function withDeadline<T>(
  clock: Clock,
  call: () => Promise<T>,
  ms: number,
  onTimeout: () => void,
  late?: (value: T) => void,
): Promise<Outcome<T>> {
  return new Promise<Outcome<T>>((resolve) => {
    let settled = false;
    const timer = clock.setTimeout(() => {
      settled = true;
      onTimeout();
      resolve({
        ok: false,
        error: new ReplugError(ErrorCodes.USB_TIMEOUT, `driver did not answer within ${ms} ms`),
      });
    }, ms);
    const finish = (r: Outcome<T>) => {
      if (settled) {
        if (r.ok) late?.(r.value);
        return;
      }
      settled = true;
      clock.clearTimeout(timer);
      resolve(r);
    };
    // new Promise(...) also catches a driver that throws synchronously instead of rejecting.
    new Promise<T>((res) => res(call())).then(
      (value) => finish({ ok: true, value }),
      (error: unknown) => finish({ ok: false, error }),
    );
  });
}
