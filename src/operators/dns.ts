/**
 * The DNS forwarder on network+3 (10.0.2.3), port 53, over UDP.
 *
 * `dnsService(ctx, options)` is the UDP service in front of the NAT: it
 * takes datagrams to the DNS address's port 53 (never under --disable-dns,
 * when network+3 is an ordinary address) and answers from there with what
 * the upstream server said. `DnsForwarder` does the forwarding and knows
 * nothing of frames; the service owns one per subscription.
 *
 * ## Theory of operation
 *
 * Upstream is `options.upstream` (`--dns-upstream=ADDR[:PORT]`) when set,
 * else the first `nameserver` of `options.resolvConf` (`--resolv-conf`,
 * default /etc/resolv.conf). That file is looked at again (one stat) when
 * a query comes at least `recheckMs` (1 s) after the last look, and re-read
 * when its inode, size or mtime changed, so an edited resolv.conf takes
 * effect within a second. Queries go out on one connected host socket to
 * the upstream, from the configured outbound address of the upstream's
 * family (--outbound-addr or --outbound-addr6) when there is one; when the
 * upstream changes, the old socket is closed and its queries are left to
 * time out.
 *
 * Each query is copied and given an id of ours, drawn at random among the
 * ids not in flight (so two guest queries with the same id, from one
 * socket or two, cannot be confused, and an off-path answer must guess
 * it); the answer gets the guest's id back and goes to the guest's address
 * and port. An answer is taken only from the upstream its query went to,
 * for an id in flight. Queries wait at most `timeoutMs` (5 s, then
 * `dns.timeout`); at most `maxPending` (1024) at once (`dns.pending-limit`).
 * With no upstream (no readable resolv.conf, no nameserver in it) the
 * guest gets SERVFAIL at once (`dns.no-upstream`).
 *
 * DNS over TCP (RFC 7766) is not handled here: the TCP NAT (tcp.ts) takes
 * connections to the DNS address's port 53 and relays them, as a byte
 * stream, to the upstream a `DnsForwarder` names (`server()`), from the
 * outbound address of the upstream's family; with no upstream, or on any
 * other port of the DNS address, it answers with a reset. Answers with TC
 * set are passed on as they are, so a guest that retries over TCP gets the
 * full answer that way. IPv6 guests ask prefix::3 through udp6.ts, which
 * runs a DnsForwarder of its own with the same options, and over TCP
 * through the same relay.
 */
import { statSync, readFileSync } from 'node:fs';
import { Subject, defer, finalize, type OperatorFunction, type Subscription } from 'rxjs';
import { ethSource } from '../protocols/ethernet.js';
import { DnsHeader, DnsRcode, encodeDnsError, setDnsId } from '../protocols/dns.js';
import { ParseError } from '../protocols/errors.js';
import {
  parseDnsServer,
  resolvConfNameservers,
  type DnsServerAddress,
} from '../protocols/resolver.js';
import {
  udpConnection,
  type UdpSocketEvent,
  type UdpSocketFactory,
} from '../streams/udp-socket.js';
import type { StackContext } from './context.js';
import { countFailure, handler } from './handler.js';
import { ipIdSource, udpFrame, type UdpPacket, type UdpService } from './udp.js';

export const DNS_PORT = 53;

export interface DnsForwarderOptions {
  /** `ADDR[:PORT]` of the upstream server; overrides resolvConf. */
  upstream?: string;
  /** The resolv.conf whose first nameserver is upstream (default /etc/resolv.conf). */
  resolvConf?: string;
  /** How host sockets are opened (tests pass a fake). */
  openSocket?: UdpSocketFactory;
  /** How long a query waits for its answer, in ms (default 5000). */
  timeoutMs?: number;
  /** Queries in flight at most (default 1024). */
  maxPending?: number;
  /** Least time between two looks at resolv.conf, in ms (default 1000). */
  recheckMs?: number;
}

interface Pending {
  guestId: number;
  deadline: number;
  upstream: Upstream;
  answer: (response: Uint8Array) => void;
}

interface Upstream {
  readonly server: DnsServerAddress;
  readonly outgoing: Subject<Uint8Array>;
  subscription: Subscription | undefined;
}

export class DnsForwarder {
  private readonly fixed: DnsServerAddress | undefined;
  private readonly resolvConf: string;
  private readonly openSocket: UdpSocketFactory;
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly recheckMs: number;
  private readonly pending = new Map<number, Pending>();
  private upstream: Upstream | undefined;
  private resolvServer: DnsServerAddress | undefined;
  private resolvStamp = '';
  private lastCheck = -Infinity;
  private timer: Subscription | undefined;
  private closed = false;

  constructor(
    private readonly ctx: StackContext,
    options: DnsForwarderOptions = {},
  ) {
    this.fixed = options.upstream === undefined ? undefined : parseDnsServer(options.upstream);
    this.resolvConf = options.resolvConf ?? '/etc/resolv.conf';
    this.openSocket = options.openSocket ?? udpConnection;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.maxPending = options.maxPending ?? 1024;
    this.recheckMs = options.recheckMs ?? 1000;
  }

  /** Queries waiting for an answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Forwards one DNS message (a query, as the guest sent it; not kept and
   * not modified). `answer` gets the response, with the guest's id, once.
   * Throws ParseError for what is not a query; counts every other drop.
   */
  forward(query: Uint8Array, answer: (response: Uint8Array) => void): void {
    const header = DnsHeader.parse(query);
    if (header.qr) throw new ParseError('dns.not-query');
    const server = this.server();
    if (server === undefined) {
      this.ctx.counters.add('dns.no-upstream');
      answer(encodeDnsError(query, DnsRcode.ServFail));
      return;
    }
    if (this.pending.size >= this.maxPending) {
      this.ctx.counters.add('dns.pending-limit');
      if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`dns: dropped id ${header.id}: limit`);
      return;
    }
    const upstream = this.connect(server);
    const id = this.freeId();
    const copy = Uint8Array.from(query);
    setDnsId(copy, 0, id);
    const deadline = this.ctx.scheduler.now() + this.timeoutMs;
    this.pending.set(id, { guestId: header.id, deadline, upstream, answer });
    this.arm();
    this.ctx.counters.add('dns.forwarded');
    upstream.outgoing.next(copy);
  }

  close(): void {
    this.closed = true;
    this.timer?.unsubscribe();
    this.pending.clear();
    this.disconnect();
  }

  /** The upstream now: --dns-upstream, or resolv.conf's first nameserver. */
  server(): DnsServerAddress | undefined {
    if (this.fixed !== undefined) return this.fixed;
    const now = this.ctx.scheduler.now();
    if (now - this.lastCheck >= this.recheckMs) {
      this.lastCheck = now;
      this.readResolvConf();
    }
    return this.resolvServer;
  }

  private readResolvConf(): void {
    let stamp: string;
    try {
      const st = statSync(this.resolvConf);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stamp === this.resolvStamp) return;
      this.resolvServer = resolvConfNameservers(readFileSync(this.resolvConf, 'utf8'))[0];
    } catch (err) {
      stamp = '';
      this.resolvServer = undefined;
      if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`dns: ${String(err)}`);
    }
    this.resolvStamp = stamp;
    if (this.ctx.log.enabled('debug')) {
      const s = this.resolvServer;
      this.ctx.log.debug(`dns: upstream from ${this.resolvConf}: ${s ? s.address : 'none'}`);
    }
  }

  private connect(server: DnsServerAddress): Upstream {
    const current = this.upstream;
    if (current !== undefined && sameServer(current.server, server)) return current;
    this.disconnect();
    const upstream: Upstream = { server, outgoing: new Subject(), subscription: undefined };
    this.upstream = upstream;
    // --outbound-addr / --outbound-addr6 by the upstream's family, not the guest's.
    const outbound = this.ctx.config.outbound;
    const local = server.family === 6 ? outbound?.v6 : outbound?.v4;
    const target = {
      address: server.address,
      port: server.port,
      family: server.family,
      ...(local !== undefined && { localAddress: local }),
    };
    upstream.subscription = this.openSocket(target, upstream.outgoing).subscribe({
      next: (event) => this.fromUpstream(upstream, event),
      error: (err: unknown) => countFailure(this.ctx, 'dns', err),
    });
    return upstream;
  }

  private disconnect(): void {
    this.upstream?.subscription?.unsubscribe();
    this.upstream?.outgoing.complete();
    this.upstream = undefined;
  }

  private fromUpstream(upstream: Upstream, event: UdpSocketEvent): void {
    if (this.closed) return;
    if (event.kind === 'error') {
      this.ctx.counters.add(`dns.upstream-error.${event.code}`);
      return;
    }
    try {
      const response = event.data;
      const header = DnsHeader.parse(response);
      const p = this.pending.get(header.id);
      if (!header.qr || p === undefined || p.upstream !== upstream) {
        this.ctx.counters.add('dns.unexpected-answer');
        return;
      }
      this.pending.delete(header.id);
      setDnsId(response, 0, p.guestId);
      this.ctx.counters.add('dns.answered');
      p.answer(response);
    } catch (err) {
      countFailure(this.ctx, 'dns', err);
    }
  }

  /** A random id not in flight (at most maxPending < 65536 are). */
  private freeId(): number {
    for (;;) {
      const id = Math.floor(Math.random() * 0x10000);
      if (!this.pending.has(id)) return id;
    }
  }

  /** One scheduled action, for the oldest query's deadline. */
  private arm(): void {
    if (this.timer !== undefined) return;
    const oldest = this.pending.values().next().value;
    if (oldest === undefined) return;
    const delay = Math.max(0, oldest.deadline - this.ctx.scheduler.now());
    this.timer = this.ctx.scheduler.schedule(() => {
      this.timer = undefined;
      const now = this.ctx.scheduler.now();
      for (const [id, p] of this.pending) {
        if (p.deadline > now) break;
        this.pending.delete(id);
        this.ctx.counters.add('dns.timeout');
        if (this.ctx.log.enabled('debug')) this.ctx.log.debug(`dns: id ${p.guestId} timed out`);
      }
      this.arm();
    }, delay);
  }
}

function sameServer(a: DnsServerAddress, b: DnsServerAddress): boolean {
  return a.address === b.address && a.port === b.port;
}

/** The forwarder as a UDP service of the stack (see the module comment). */
export function dnsService(ctx: StackContext, options: DnsForwarderOptions = {}): UdpService {
  const { dns, dnsEnabled } = ctx.config;
  return {
    accepts: ({ ip, udp }) => dnsEnabled && ip.dst === dns && udp.dstPort === DNS_PORT,
    operator: dnsResponder(ctx, options),
  };
}

export function dnsResponder(
  ctx: StackContext,
  options: DnsForwarderOptions = {},
): OperatorFunction<UdpPacket, Buffer> {
  return (source) =>
    defer(() => {
      const forwarder = new DnsForwarder(ctx, options);
      const nextId = ipIdSource();
      return source.pipe(
        handler<UdpPacket, Buffer>(ctx, 'dns', ({ ip, udp }, emit) => {
          const to = {
            dstMac: Uint8Array.from(ethSource(ip.buf)),
            srcMac: ctx.dnsMac,
            src: ip.dst,
            srcPort: DNS_PORT,
            dst: ip.src,
            dstPort: udp.srcPort,
          };
          forwarder.forward(udp.payload, (response) => {
            try {
              emit(udpFrame({ ...to, identification: nextId() }, response));
            } catch (err) {
              countFailure(ctx, 'dns', err);
            }
          });
        }),
        finalize(() => forwarder.close()),
      );
    });
}
