import { ErrorCodes, ReplugError } from '../../src/errors.js';
import {
  mapSendError,
  type NetlinkErrorListener,
  type NetlinkMessageInfo,
  type NetlinkMessageListener,
  type NetlinkSocket,
} from '../../src/usb/netlink.js';

/** A NetlinkSocket the test drives: deliver() datagrams in, read sent[] out, make send fail with an errno. */
export class FakeNetlinkSocket implements NetlinkSocket {
  readonly localPort = 4242;
  groups: number[] = [];
  closed = false;
  readonly sent: Array<{ message: Buffer; group: number }> = [];
  /** errno the next sends fail with (e.g. 'EPERM'), as the native socket reports it. */
  sendErrno: string | undefined;
  private readonly messageListeners = new Set<NetlinkMessageListener>();
  private readonly errorListeners = new Set<NetlinkErrorListener>();

  bind(groups: readonly number[]): void {
    this.groups.push(...groups);
  }

  onMessage(listener: NetlinkMessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onError(listener: NetlinkErrorListener): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  async send(message: Buffer, group: number): Promise<void> {
    if (this.closed) throw new ReplugError(ErrorCodes.INTERNAL, 'send on a closed socket');
    if (this.sendErrno) {
      const err = Object.assign(new Error(`send: ${this.sendErrno}`), { code: this.sendErrno });
      throw mapSendError(err, group);
    }
    this.sent.push({ message, group });
  }

  close(): void {
    this.closed = true;
  }

  get listenerCount(): number {
    return this.messageListeners.size + this.errorListeners.size;
  }

  /** Delivers a datagram as if it arrived; default sender is the kernel on group 1. */
  deliver(message: Buffer, info: NetlinkMessageInfo = { port: 0, groups: 1 }): void {
    for (const l of this.messageListeners) l(message, info);
  }

  fail(error: Error): void {
    for (const l of this.errorListeners) l(error);
  }
}
