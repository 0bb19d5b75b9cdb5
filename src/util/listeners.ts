/**
 * Typed listener sets whose owner removes them (habit 4), for parts that are not EventEmitters: `on`
 * returns the function that removes that one listener. A throwing listener is reported through `onError`
 * and never reaches the emitter's caller (an MQTT.js handler, a timer), and there is no special 'error'
 * event that throws when nobody listens.
 */
type Listener = (...args: never[]) => void;

export class Listeners<E extends { [K in keyof E]: unknown[] }> {
  private readonly sets = new Map<keyof E, Set<Listener>>();

  constructor(private readonly onError: (err: unknown, event: string) => void = () => {}) {}

  on<K extends keyof E>(event: K, fn: (...args: E[K]) => void): () => void {
    const listener = fn as unknown as Listener;
    let set = this.sets.get(event);
    if (!set) {
      set = new Set();
      this.sets.set(event, set);
    }
    set.add(listener);
    return () => void this.sets.get(event)?.delete(listener);
  }

  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    for (const listener of [...(this.sets.get(event) ?? [])]) {
      try {
        (listener as unknown as (...a: E[K]) => void)(...args);
      } catch (err) {
        this.onError(err, String(event));
      }
    }
  }

  count<K extends keyof E>(event: K): number {
    return this.sets.get(event)?.size ?? 0;
  }

  clear(): void {
    this.sets.clear();
  }
}
