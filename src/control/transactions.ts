/**
 * The transactions an agent has acted on, so a request replayed with the same transaction id (a QoS 1
 * redelivery, a requester retrying, a copy from a bridge loop) is acted on once (issue 18). Bounded: the
 * oldest are forgotten first. A transaction older than the age bound cannot be replayed anyway, because its
 * `ts` makes it stale; a request without `ts` is remembered as long as it is among the last `capacity`.
 */
import type { Transaction } from './contract.js';

export const DEFAULT_TRANSACTION_MEMORY = 4096;

export class TransactionMemory {
  // A Map keeps insertion order: its first key is the oldest.
  private readonly seen = new Map<string, true>();

  constructor(private readonly capacity = DEFAULT_TRANSACTION_MEMORY) {}

  /** true the first time `id` is offered (and remembers it), false for a replay. */
  admit(id: Transaction): boolean {
    // One transaction id is one request, whatever its action or topic (direct or _fleet). The type is part
    // of the key: transaction 1 and "1" are different ids.
    const key = `${typeof id}:${id}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    while (this.seen.size > this.capacity) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}
