// The example bulk-loopback session driver (examples/drivers/bulk-loopback.mjs, copied into the guest at
// /replug/examples/drivers by initramfs.mjs) with its liveness probe run back to back instead of once a
// second, so the gadget does bulk I/O nearly all the time and an unplug lands in the middle of a transfer.
// The agent has no flag for a driver's options; this wrapper is how the lab passes them. It also prints one
// JSON line per session end ({"lab":"bulk",...}: loopbacks done, and how the last one ended) next to the
// agent's own log lines, so the scenario can tell an unplug mid-transfer from one between transfers.
import createBulkLoopbackDriver from '/replug/examples/drivers/bulk-loopback.mjs';

const mono = () => Number(process.hrtime.bigint()) / 1e6;
const say = (o) => process.stdout.write(`${JSON.stringify({ lab: 'bulk', t: mono(), ...o })}\n`);

export default function createBusyBulkLoopbackDriver({ log, options = {} } = {}) {
  const inner = createBulkLoopbackDriver({
    log,
    options: { probeIntervalMs: Number(process.env.LAB_PROBE_INTERVAL_MS ?? 20), ...options },
  });
  return {
    ...inner,
    name: 'bulk-loopback-busy',
    async open(device, ctx) {
      const handle = await inner.open(device, ctx);
      say({ ev: 'open', address: device.address });
      return { inner: handle, ok: 1, failed: null, address: device.address };
    },
    async probe(handle, ctx) {
      const t0 = mono();
      try {
        await inner.probe(handle.inner, ctx);
        handle.ok++;
      } catch (err) {
        handle.failed = { code: err?.code, message: String(err?.message ?? err), afterMs: mono() - t0 };
        throw err;
      }
    },
    async close(handle, ctx) {
      const t0 = mono();
      await inner.close(handle.inner, ctx);
      say({
        ev: 'close',
        address: handle.address,
        loopbacks: handle.ok,
        failed: handle.failed,
        closeMs: mono() - t0,
      });
    },
  };
}
