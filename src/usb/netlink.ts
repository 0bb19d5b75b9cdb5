/**
 * The netlink seam (habit 1): a NETLINK_KOBJECT_UEVENT socket behind a small port, so the uevent source
 * and the relay are unit-tested with a fake, and only this file loads the native `netlink` package.
 *
 * Node has no raw netlink sockets; the `netlink` package (MIT, prebuilt N-API for linux x64/arm/arm64/ia32)
 * exposes `RawNetlinkSocket`: bind, addMembership(group), send(buf, { groups }), message events with the
 * sender's port and destination groups. It is imported lazily so a missing or broken binary makes the
 * caller report "unavailable" instead of crashing the agent.
 */
import { ErrorCodes, errnoOf, ReplugError } from '../errors.js';

/** include/uapi/linux/netlink.h */
export const NETLINK_KOBJECT_UEVENT = 15;
/**
 * Multicast groups of NETLINK_KOBJECT_UEVENT (systemd device-monitor-private.h `MonitorNetlinkGroup`):
 * 1 = the kernel's uevents (MONITOR_GROUP_KERNEL), 2 = udevd's processed events (MONITOR_GROUP_UDEV).
 */
export const GROUP_KERNEL = 1;
export const GROUP_UDEV = 2;

export interface NetlinkMessageInfo {
  /** Sender's port id: 0 for the kernel, the sending socket's port otherwise. */
  port: number;
  /** Destination groups bitmask the message was sent to (1 = kernel uevents, 2 = udev). */
  groups: number;
}

export type NetlinkMessageListener = (message: Buffer, info: NetlinkMessageInfo) => void;
export type NetlinkErrorListener = (error: Error) => void;

/** One NETLINK_KOBJECT_UEVENT socket. */
export interface NetlinkSocket {
  /** The port id the kernel gave this socket: messages we broadcast carry it as their sender port. */
  readonly localPort: number;
  /** Joins multicast groups (group numbers, not a mask: 1 = kernel, 2 = udev). */
  bind(groups: readonly number[]): void;
  /** Subscribes to datagrams; returns the function that removes the listener (habit 4). */
  onMessage(listener: NetlinkMessageListener): () => void;
  onError(listener: NetlinkErrorListener): () => void;
  /**
   * Broadcasts one datagram to a multicast group (group 0: sends it to the kernel's uevent socket, which
   * re-broadcasts it as a kernel uevent on group 1 of this network namespace). Rejects with REPLUG_RELAY_PERMISSION when the kernel
   * refuses (no CAP_NET_ADMIN in this network namespace).
   */
  send(message: Buffer, group: number): Promise<void>;
  close(): void;
}

export type NetlinkSocketFactory = () => Promise<NetlinkSocket>;

export const PERMISSION_MESSAGE =
  "replug relay needs CAP_NET_ADMIN in this container's network namespace (docker: --cap-add NET_ADMIN or --privileged)";

/**
 * Maps a send error to what a user can act on. net/netlink/af_netlink.c `netlink_sendmsg`: sending to a
 * multicast group needs NL_CFG_F_NONROOT_SEND, which NETLINK_KOBJECT_UEVENT does not set
 * (lib/kobject_uevent.c `uevent_net_init` sets only NL_CFG_F_NONROOT_RECV), or `netlink_allowed`:
 * CAP_NET_ADMIN in the user namespace owning the socket's network namespace. Otherwise -EPERM.
 */
export function mapSendError(err: unknown, group: number): ReplugError {
  const errno = errnoOf(err);
  if (errno === 'EPERM' || errno === 'EACCES') {
    return new ReplugError(ErrorCodes.RELAY_PERMISSION, PERMISSION_MESSAGE, {
      hint: 'or run replug relay on the host, where udevd already broadcasts',
      cause: err,
      details: { errno, group },
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ReplugError(ErrorCodes.INTERNAL, `netlink send to group ${group} failed: ${message}`, {
    cause: err,
    details: { errno, group },
  });
}

/** Maps an open/bind error: the caller reports it as the source or relay being unavailable. */
export function mapOpenError(err: unknown): ReplugError {
  const errno = errnoOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const why =
    errno === 'EPROTONOSUPPORT' || errno === 'EAFNOSUPPORT'
      ? 'this kernel or sandbox does not offer NETLINK_KOBJECT_UEVENT sockets'
      : errno === 'EPERM' || errno === 'EACCES'
        ? 'a seccomp or LSM policy refuses netlink sockets here'
        : `cannot open a NETLINK_KOBJECT_UEVENT socket: ${message}`;
  return new ReplugError(ErrorCodes.SOURCE_UNAVAILABLE, why, { cause: err, details: { errno } });
}

/** The subset of `netlink`'s RawNetlinkSocket we use (declared here so its own typings stay out). */
interface RawSocket {
  address(): { port: number; groups: number };
  addMembership(group: number): void;
  send(msg: Uint8Array, options: { port?: number; groups?: number }, cb: (err?: Error) => void): void;
  on(event: 'message', fn: (msg: Buffer, rinfo: NetlinkMessageInfo) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
  close(): void;
}
interface NetlinkModule {
  RawNetlinkSocket: new (protocol: number, options: Record<string, unknown>) => RawSocket;
}

async function loadNetlink(): Promise<NetlinkModule> {
  // A variable specifier keeps the package optional at type level too (its typings pull @types/node 12).
  const specifier = 'netlink';
  const mod = (await import(specifier)) as NetlinkModule & { default?: NetlinkModule };
  return mod.RawNetlinkSocket ? mod : (mod.default as NetlinkModule);
}

class NativeNetlinkSocket implements NetlinkSocket {
  private closed = false;
  constructor(private readonly raw: RawSocket) {}

  get localPort(): number {
    return this.raw.address().port;
  }

  bind(groups: readonly number[]): void {
    for (const g of groups) this.raw.addMembership(g);
  }

  onMessage(listener: NetlinkMessageListener): () => void {
    const fn = (msg: Buffer, rinfo: NetlinkMessageInfo) =>
      listener(msg, { port: rinfo.port, groups: rinfo.groups });
    this.raw.on('message', fn);
    return () => this.raw.off('message', fn as (...args: never[]) => void);
  }

  onError(listener: NetlinkErrorListener): () => void {
    this.raw.on('error', listener);
    return () => this.raw.off('error', listener as (...args: never[]) => void);
  }

  send(message: Buffer, group: number): Promise<void> {
    return new Promise((resolve, reject) => {
      // sockaddr_nl { nl_pid = 0, nl_groups = mask }, as device_monitor_send_device's default destination.
      // Group 0 = unicast to the kernel's uevent socket: lib/kobject_uevent.c `uevent_net_rcv_skb` (4.18+)
      // re-broadcasts a message sent there on group 1 of this netns (needs CAP_SYS_ADMIN over it).
      this.raw.send(message, { port: 0, groups: group > 0 ? 1 << (group - 1) : 0 }, (err) => {
        // device-monitor.c: "If we send to a multicast group, we will get ECONNREFUSED, which is expected"
        // (older kernels had no receiver at port 0): the broadcast itself went out.
        if (!err || errnoOf(err) === 'ECONNREFUSED') resolve();
        else reject(mapSendError(err, group));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.close();
  }
}

/** Opens a real NETLINK_KOBJECT_UEVENT socket. Rejects with REPLUG_SOURCE_UNAVAILABLE when it cannot. */
export const openUeventSocket: NetlinkSocketFactory = async () => {
  let mod: NetlinkModule;
  try {
    mod = await loadNetlink();
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ReplugError(
      ErrorCodes.SOURCE_UNAVAILABLE,
      `the netlink package could not be loaded (${message})`,
      { hint: 'reinstall replug for this architecture (prebuilt for linux x64, arm, arm64)', cause: err },
    );
  }
  try {
    // A large receive buffer: a hub replug fires dozens of uevents at once (udevd uses 128 MiB).
    return new NativeNetlinkSocket(
      new mod.RawNetlinkSocket(NETLINK_KOBJECT_UEVENT, {
        recvBufferSize: 4 * 1024 * 1024,
      }),
    );
  } catch (err) {
    throw mapOpenError(err);
  }
};
