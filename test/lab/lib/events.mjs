// Everything the guest reports lands here in arrival order, so a cycle can ask "the first X since mark" for
// events that arrived before it started waiting as well as those still to come. Marks are positions in the
// log, not guest times: the console is ordered, so anything caused by an action taken after a mark arrives
// after it, whatever clock the event's own timestamp uses.
export class EventLog {
  events = [];
  #waiters = new Set();

  push(m) {
    m.idx = this.events.length;
    this.events.push(m);
    for (const w of this.#waiters) if (w.pred(m)) w.done(m);
  }

  find(pred) {
    return this.events.find(pred);
  }

  /** The first event matching pred, already logged or arriving within timeoutMs; null on timeout. */
  wait(pred, timeoutMs) {
    const hit = this.events.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => {
      const w = {
        pred,
        done: (m) => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve(m);
        },
      };
      const timer = setTimeout(() => w.done(null), timeoutMs);
      this.#waiters.add(w);
    });
  }
}

/** Parses `udevadm monitor` lines: `KERNEL[31.234567] add /devices/.../usb3/3-1 (usb)`. */
export function parseUdevLine(line) {
  const m = line?.match(/^(KERNEL|UDEV)\s*\[(\d+\.\d+)\]\s+(\w+)\s+(\S+)\s+\((\S+)\)/);
  if (!m) return null;
  return { src: m[1], t: Number(m[2]) * 1000, action: m[3], devpath: m[4], subsystem: m[5] };
}

export function stats(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const q = (p) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
  return { n: v.length, min: round(v[0]), p50: round(q(0.5)), max: round(v[v.length - 1]) };
}

export const round = (x) => Math.round(x * 10) / 10;
