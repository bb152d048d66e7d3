/**
 * Host ping sockets as Observable sources: the layer the ICMP echo NAT
 * (operators/icmp-nat.ts) sends through. One `PingSocket` is one kernel
 * ping socket (`SOCK_DGRAM` with `IPPROTO_ICMP`, or `IPPROTO_ICMPV6` for
 * family 6; see native/ping.cc): `send()` hands the kernel a whole echo
 * request, whose identifier the kernel replaces with the socket's own;
 * `messages$` emits the echo replies it receives and the ICMP errors the
 * host got about its requests.
 *
 * `messages$` is hot and shared: subscribing starts polling the fd from
 * libuv's event loop (never the thread pool), and unsubscribing the last
 * subscriber stops it. `close()` closes the fd and completes `messages$`.
 * A message's `data` and `from` are views into pooled buffers that are
 * never rewritten, only replaced, so they stay valid while referenced.
 *
 * Opening fails with a `PingSocketError`: code `forbidden` when the
 * kernel's `net.ipv4.ping_group_range` does not include our group (closed,
 * `1 0`, by default on many systems), `failed` for anything else.
 *
 * `PingSockets` is the seam tests replace with a fake.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { Observable, Subject, share } from 'rxjs';
import { native, type NativePoller } from '../native.js';

export type PingFamily = 4 | 6;

/** An echo reply, or an ICMP error about one of this socket's requests. */
export interface PingMessage {
  readonly kind: 'reply' | 'error';
  /**
   * A reply: the whole ICMP message (header included, no IP header), with
   * the kernel's identifier. An error: the ICMP header and whatever more the
   * reporter quoted of our request (its sequence number at bytes 6..8).
   */
  readonly data: Uint8Array;
  /** Reply: its sender. Error: the host that reported it, or all zeros. 4 or 16 bytes. */
  readonly from: Uint8Array;
  /** TTL (hop limit) the reply or error arrived with; 0 when unknown. */
  readonly ttl: number;
  /** Error only: `ErrorOrigin.Icmp` for an ICMP error received, `Local` for the host's own. */
  readonly origin: number;
  /** Error only: the ICMP type and code reported, and ee_info (next-hop MTU, pointer). */
  readonly type: number;
  readonly code: number;
  readonly info: number;
  /** Error only: the errno the kernel mapped it to. */
  readonly errno: number;
}

export interface PingSocket {
  readonly family: PingFamily;
  readonly messages$: Observable<PingMessage>;
  /**
   * Sends one echo request (ICMP header and data) to `address` (4 or 16
   * bytes). `ttl` 1..255 sets this datagram's TTL, 0 the default. Returns
   * the bytes sent, or a negative errno (never throws for a send failure).
   */
  send(address: Uint8Array, message: Uint8Array, ttl: number): number;
  close(): void;
}

export interface PingSockets {
  /** Opens a ping socket; throws `PingSocketError`. */
  open(family: PingFamily): PingSocket;
}

export type PingSocketErrorCode = 'forbidden' | 'failed';

export class PingSocketError extends Error {
  override name = 'PingSocketError';
  constructor(
    readonly code: PingSocketErrorCode,
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** SO_EE_ORIGIN_* values of linux/errqueue.h. */
export const ErrorOrigin = { Local: 1, Icmp: 2, Icmp6: 3 } as const;

const READABLE = 1;
const POOL_SIZE = 1 << 18;
const MAX_MESSAGE = 65536;
const MESSAGES_PER_WAKE = 64;
const META_STRIDE = 8;
const ADDRESS_STRIDE = 16;
const ADDRESS_POOL_SIZE = 1 << 14;
const RANGE_FILE = '/proc/sys/net/ipv4/ping_group_range';

/** The kernel's ping sockets, through the addon. */
export const nativePingSockets: PingSockets = {
  open(family) {
    const fd = native().pingOpen(family);
    if (fd < 0) throw openError(-fd);
    return new NativePingSocket(fd, family);
  },
};

function openError(errno: number): PingSocketError {
  if (errno === constants.errno.EACCES || errno === constants.errno.EPERM) {
    let range = 'unknown';
    try {
      range = readFileSync(RANGE_FILE, 'utf8').trim().replace(/\s+/, ' ');
    } catch {
      // not readable: say so as "unknown"
    }
    return new PingSocketError(
      'forbidden',
      errno,
      `the kernel refuses ping sockets to group ${process.getgid?.() ?? '?'}: ` +
        `net.ipv4.ping_group_range is "${range}"`,
    );
  }
  return new PingSocketError('failed', errno, `ping socket: errno ${errno}`);
}

class NativePingSocket implements PingSocket {
  readonly messages$: Observable<PingMessage>;
  private readonly poller: NativePoller;
  private readonly closed$ = new Subject<void>();
  private onMessage: ((m: PingMessage) => void) | undefined;
  private onError: ((e: Error) => void) | undefined;
  private pool = Buffer.allocUnsafe(POOL_SIZE);
  private poolOffset = 0;
  private addressPool = new Uint8Array(ADDRESS_POOL_SIZE);
  private addressOffset = 0;
  private readonly meta = new Int32Array(MESSAGES_PER_WAKE * META_STRIDE);
  private isClosed = false;

  constructor(
    private readonly fd: number,
    readonly family: PingFamily,
  ) {
    this.poller = new (native().Poller)(fd, (status) => this.onPoll(status));
    this.messages$ = new Observable<PingMessage>((subscriber) => {
      if (this.isClosed) {
        subscriber.complete();
        return;
      }
      this.onMessage = (m) => subscriber.next(m);
      this.onError = (e) => subscriber.error(e);
      const done = this.closed$.subscribe(() => subscriber.complete());
      this.poller.start(READABLE);
      return () => {
        done.unsubscribe();
        this.onMessage = undefined;
        this.onError = undefined;
        if (!this.isClosed) this.poller.stop();
      };
    }).pipe(share());
  }

  send(address: Uint8Array, message: Uint8Array, ttl: number): number {
    if (this.isClosed) return -constants.errno.EBADF;
    return native().pingSend(this.fd, this.family, address, message, ttl);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.poller.close();
    native().closeFd(this.fd);
    this.closed$.next();
    this.closed$.complete();
  }

  /**
   * libuv reports a pending ICMP error (POLLERR) as a failed poll and stops
   * the handle: the error queue is drained like the replies, and polling is
   * started again.
   */
  private onPoll(status: number): void {
    if (this.isClosed) return;
    this.readBatch();
    if (status < 0 && !this.isClosed && this.onMessage !== undefined) {
      this.poller.start(READABLE);
    }
  }

  private readBatch(): void {
    if (this.pool.length - this.poolOffset < MAX_MESSAGE) {
      this.pool = Buffer.allocUnsafe(POOL_SIZE);
      this.poolOffset = 0;
    }
    if (ADDRESS_POOL_SIZE - this.addressOffset < MESSAGES_PER_WAKE * ADDRESS_STRIDE) {
      this.addressPool = new Uint8Array(ADDRESS_POOL_SIZE);
      this.addressOffset = 0;
    }
    const n = native().pingReceive(
      this.fd,
      this.pool,
      this.poolOffset,
      this.meta,
      this.addressPool.subarray(this.addressOffset),
      MAX_MESSAGE,
    );
    if (n < 0) {
      this.onError?.(new Error(`ping socket read failed: errno ${-n}`));
      return;
    }
    const addressLength = this.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) {
      const m = i * META_STRIDE;
      const length = this.meta[m]!;
      const at = this.addressOffset;
      const data = this.pool.subarray(this.poolOffset, this.poolOffset + length);
      this.poolOffset += length;
      this.addressOffset += ADDRESS_STRIDE;
      this.onMessage?.({
        kind: this.meta[m + 1] === 1 ? 'error' : 'reply',
        data,
        from: this.addressPool.subarray(at, at + addressLength),
        origin: this.meta[m + 2]!,
        type: this.meta[m + 3]!,
        code: this.meta[m + 4]!,
        info: this.meta[m + 5]!,
        errno: this.meta[m + 6]!,
        ttl: this.meta[m + 7]!,
      });
    }
  }
}
