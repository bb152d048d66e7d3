/**
 * TCP NAT: every connection the guest opens is terminated by one of our
 * TCP endpoints and spliced onto an ordinary host socket.
 *
 * ## Theory of operation
 *
 * A flow is keyed by the guest's 4-tuple. A SYN for no flow opens one: the
 * endpoint (protocols/tcp/endpoint.ts) waits in CONNECT-PENDING while the
 * host socket connects to the NAT target (nat.ts: the gateway is the host's
 * loopback). Only when the host accepts does the guest get its SYN-ACK;
 * a refusal becomes RST|ACK (ECONNREFUSED in the guest), no route to the
 * network (ENETUNREACH) an ICMP net unreachable, and any other failure an
 * ICMP host unreachable. So does a host that stays silent for
 * `connectTimeoutMs` (20 s): our own limit, well before the kernel's own
 * ETIMEDOUT after about 127 s of SYN retries. Retransmitted SYNs
 * meanwhile are absorbed by the endpoint.
 *
 * Then bytes flow both ways with flow control end to end:
 * - guest -> host: the endpoint delivers in-order bytes, we write them to
 *   the host socket, and report them `consumed` only when the kernel took
 *   them; the window the guest sees is what the host socket has not yet
 *   absorbed, so a slow host server slows the guest, and nothing piles up
 *   here beyond one receive window.
 * - host -> guest: host data goes into the endpoint's bounded send buffer;
 *   when it is full the host socket is paused, and resumed when the guest's
 *   ACKs free room.
 * FIN and RST cross in both directions; half-close is ordinary (guest FIN
 * -> host socket end(), host end -> FIN to the guest, while the other
 * direction keeps flowing). The flow is removed when its endpoint says
 * `freed`, whatever the reason; a SYN that frees a flow in TIME-WAIT
 * ('reopen') then opens the next flow of that 4-tuple.
 *
 * Each flow keeps one scheduled action on the stack's scheduler for the
 * endpoint's next deadline; it is moved only when a deadline comes earlier
 * (a timer that fires early is harmless: it re-arms).
 *
 * Segments for no flow get the RST RFC 9293 prescribes; past `maxFlows`
 * a new SYN gets a RST (counted as `tcp.flow-limit`) instead of growing.
 *
 * IPv4 and IPv6 flows are the same flows: what differs (the frame around
 * a segment, the pseudo header, the GSO type, the ICMP error about a
 * SYN) is one `FlowIp` per flow. `tcpNat` is the IPv4 route and
 * `tcpNatV6` the IPv6 one, each with its own table of `maxFlows`; the IPv6
 * gateway prefix::2 reaches the host's ::1 (nat.ts).
 *
 * Port forwarding (hostfwd.ts) opens flows the other way: `forward` takes
 * an accepted, paused host socket, shows the guest the client's own
 * address and port (or the gateway's, forward-source.ts), and has the
 * endpoint send the SYN (active open); the host socket is resumed once the
 * guest accepted, and reset if it refuses or never answers. From there on
 * it is an ordinary flow, keyed as the guest's segments will be.
 *
 * Connections to the DNS address's port 53 (network+3 or prefix::3, unless
 * --disable-dns) are DNS over TCP: their host socket connects to the DNS
 * forwarder's upstream (`dnsUpstream`) instead, and the bytes are relayed
 * unchanged. Without an upstream, and on other ports of that address, the
 * SYN gets a reset (`tcp.unreachable.dns-over-tcp`).
 */
import { randomFillSync } from 'node:crypto';
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { pseudoSumV4, pseudoSumV6 } from '../protocols/checksum.js';
import { ethSource } from '../protocols/ethernet.js';
import { Icmpv4Type, UnreachableCode } from '../protocols/icmpv4.js';
import { IpProtocol, type Ipv4Packet } from '../protocols/ipv4.js';
import { Icmpv6Type, Icmpv6UnreachableCode } from '../protocols/icmpv6.js';
import { NextHeader, type Ipv6Packet } from '../protocols/ipv6.js';
import {
  TcpEndpoint,
  TcpState,
  type TcpConfig,
  type TcpFreeReason,
  type TcpSink,
} from '../protocols/tcp/endpoint.js';
import {
  TcpControl,
  TcpSegment,
  encodeTcpSegment,
  encodedLength,
  resetFor,
  type TcpRepr,
} from '../protocols/tcp/segment.js';
import { ipv6Equals, type Ipv4, type Mac } from '../protocols/address.js';
import {
  netConnector,
  releaseHostChunk,
  type HostTcpAccept,
  type HostTcpConnector,
  type HostTcpEvents,
  type HostTcpSocket,
} from '../streams/host-tcp.js';
import { GsoType, VnetFlag, trustedChecksum, writeVnetHeader } from '../streams/offload.js';
import { isLocalAddress, localMac, type StackContext } from './context.js';
import {
  IPV4_PAYLOAD_OFFSET,
  IPV6_PAYLOAD_OFFSET,
  icmpErrorFrame,
  icmpv6ErrorFrame,
  ipv4Frame,
  ipv6Frame,
} from './frames.js';
import { handler } from './handler.js';
import { isLocalAddressV6, localMacV6 } from './ipv6.js';
import { natTargetV4, natTargetV6, type NatTarget } from './nat.js';
import { EphemeralPorts, forwardSource, type ForwardSource } from './forward-source.js';

export interface TcpNatOptions {
  /** How host sockets are made (tests inject a fake host). */
  connector?: HostTcpConnector;
  /** Concurrent flows at most (default 8192). */
  maxFlows?: number;
  /** Endpoint settings beyond ports, ISS and MTU. */
  endpoint?: Partial<TcpConfig>;
  /**
   * How long a host connect may go unanswered before the guest is told
   * the host is unreachable (default 20 s, on the stack's scheduler).
   */
  connectTimeoutMs?: number;
  /**
   * The upstream DNS server, for connections to the DNS address's port 53
   * (DNS over TCP is relayed to it as a byte stream); without one they are
   * reset. The relay's host socket takes the outbound address of the
   * upstream's family (--outbound-addr or --outbound-addr6).
   */
  dnsUpstream?: () => { address: string; port: number; family: 4 | 6 } | undefined;
}

/** Where a forwarded host connection goes: a port of a guest address. */
export interface ForwardTarget {
  guestAddr: Ipv4;
  /** The guest's MAC, resolved by the caller (operators/hostfwd.ts). */
  guestMac: Mac;
  guestPort: number;
  /** The host client that connected, when it is an IPv4 peer. */
  client?: ForwardSource;
  /** Gateway ports the caller uses itself toward this guest port (UDP forwards). */
  taken?: (port: number) => boolean;
}

/** What the operator exposes for tests and the API. */
export interface TcpNatHandle {
  readonly flows: number;
  /**
   * Port forwarding: an accepted host connection becomes a connection we
   * open to the guest (IPv4 only), from the client's own address and port
   * as slirp4netns does, or from the gateway where the guest could not
   * answer the client's address (forward-source.ts). False when the flow
   * table is full: the host socket is then reset.
   */
  forward(target: ForwardTarget, accept: HostTcpAccept): boolean;
  /** Whether a forwarded connection uses this gateway port toward guestAddr:guestPort. */
  usesPort(guestAddr: Ipv4, guestPort: number, port: number): boolean;
}

const DEFAULT_MAX_FLOWS = 8192;
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

type TcpTarget =
  | NatTarget
  | { kind: 'dns'; address: string; port: number; family: 4 | 6 }
  | { kind: 'unreachable'; reason: 'dns-over-tcp' };
const TCP_CHECKSUM_OFFSET = 16;
/** Payload of one TCP super-frame: an IPv4 packet stays under 64 KiB. */
const GSO_BYTES = 65000;

class IssSource {
  private readonly pool = new Uint32Array(256);
  private next = 256;

  draw(): number {
    if (this.next === this.pool.length) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    return this.pool[this.next++]!;
  }
}

/**
 * What a flow needs of its IP version: frames to the guest around a
 * segment of `length` bytes (which starts at `l4Offset`), the pseudo-header
 * sum, the GSO type, and the ICMP error about the guest's SYN.
 */
interface FlowIp {
  readonly l4Offset: number;
  readonly gsoType: number;
  readonly ipv6: boolean;
  frame(length: number, headed: boolean): Buffer;
  pseudoSum(length: number): number;
  unreachable(reason: 'net' | 'host'): Buffer | undefined;
}

/** Replies to the guest's IPv4 `packet`, from `ourMac`. */
function flowIpV4(ctx: StackContext, packet: Ipv4Packet, ourMac: Mac): FlowIp {
  const guestMac = Uint8Array.from(ethSource(packet.buf));
  return ipv4Framing(guestMac, ourMac, packet.dst, packet.src, (reason) =>
    icmpErrorFrame(
      ctx,
      packet,
      Icmpv4Type.DestinationUnreachable,
      reason === 'net' ? UnreachableCode.Net : UnreachableCode.Host,
    ),
  );
}

/** IPv4 frames from `src` (ours) to `dst` (the guest's, at `guestMac`). */
function ipv4Framing(
  guestMac: Uint8Array,
  ourMac: Mac,
  src: Ipv4,
  dst: Ipv4,
  unreachable: FlowIp['unreachable'],
): FlowIp {
  return {
    l4Offset: IPV4_PAYLOAD_OFFSET,
    gsoType: GsoType.TcpV4,
    ipv6: false,
    frame: (length, headed) =>
      ipv4Frame(
        guestMac,
        ourMac,
        { src, dst, protocol: IpProtocol.TCP, payloadLength: length, dontFragment: true },
        headed,
      ),
    pseudoSum: (length) => pseudoSumV4(src, dst, IpProtocol.TCP, length),
    unreachable,
  };
}

/** Replies to the guest's IPv6 `packet`, from `ourMac`. */
function flowIpV6(ctx: StackContext, packet: Ipv6Packet, ourMac: Mac): FlowIp {
  const guestMac = Uint8Array.from(ethSource(packet.buf));
  const src = Uint8Array.from(packet.dst);
  const dst = Uint8Array.from(packet.src);
  return {
    l4Offset: IPV6_PAYLOAD_OFFSET,
    gsoType: GsoType.TcpV6,
    ipv6: true,
    frame: (length, headed) =>
      ipv6Frame(
        guestMac,
        ourMac,
        { src, dst, nextHeader: NextHeader.TCP, payloadLength: length },
        headed,
      ),
    pseudoSum: (length) => pseudoSumV6(src, dst, NextHeader.TCP, length),
    unreachable: (reason) =>
      icmpv6ErrorFrame(
        ctx,
        packet,
        Icmpv6Type.DestinationUnreachable,
        reason === 'net' ? Icmpv6UnreachableCode.NoRoute : Icmpv6UnreachableCode.AddressUnreachable,
      ),
  };
}

/** One guest connection and its host socket. */
class Flow implements TcpSink {
  readonly endpoint: TcpEndpoint;
  socket: HostTcpSocket | undefined;
  /** What the host socket reports, routed to the endpoint. */
  readonly host: HostTcpEvents = {
    connected: () => this.hostConnected(),
    data: (chunk) => this.hostData(chunk),
    end: () => this.hostEnd(),
    error: (code) => this.hostError(code),
    closed: () => this.hostClosed(),
  };
  private timer: Subscription | undefined;
  private timerAt = Infinity;
  /** Gives up on a host connect that never answers. */
  private connectTimer: Subscription | undefined;
  private paused = false;
  private done = false;
  /** The host sent FIN; we passed the guest's FIN on with end(). */
  private hostFin = false;
  private wroteFin = false;

  constructor(
    private readonly nat: TcpNat,
    readonly key: string,
    private readonly ip: FlowIp,
    config: TcpConfig,
    /** We opened it toward the guest for a host connection (port forwarding). */
    private readonly forwarded = false,
  ) {
    this.endpoint = new TcpEndpoint(config, this);
  }

  private get now(): number {
    return this.nat.ctx.scheduler.now();
  }

  // --- inputs -----------------------------------------------------------

  receive(seg: TcpSegment): void {
    this.endpoint.receive(seg, this.now);
    this.arm();
  }

  /** Port forwarding: SYN to the guest; the host socket stays paused until it answers. */
  activeOpen(): void {
    this.endpoint.connect(this.now);
    this.arm();
  }

  /** The host connect has started: give it `ms` to succeed or fail. */
  watchConnect(ms: number): void {
    if (this.done) return;
    this.connectTimer = this.nat.ctx.scheduler.schedule(() => {
      this.connectTimer = undefined;
      if (this.done || this.endpoint.state !== TcpState.ConnectPending) return;
      this.nat.ctx.counters.add('tcp.host.connect-timeout');
      this.unreachable('host');
      this.arm();
    }, ms);
  }

  private hostConnected(): void {
    this.connectTimer?.unsubscribe();
    this.connectTimer = undefined;
    if (this.done) return;
    this.endpoint.hostConnected(this.now);
    this.arm();
  }

  private hostData(chunk: Buffer): void {
    if (this.done) return;
    const room = this.endpoint.send(chunk, this.now);
    if (room <= 0 && !this.paused) {
      this.paused = true;
      this.socket?.pause();
    }
    this.arm();
  }

  private hostEnd(): void {
    this.hostFin = true;
    if (this.done) return;
    this.endpoint.close(this.now);
    this.arm();
  }

  private hostError(code: string): void {
    if (this.done) return;
    this.nat.ctx.counters.add(`tcp.host.${code}`);
    if (this.endpoint.state !== TcpState.ConnectPending) this.endpoint.abort(this.now);
    else if (code === 'ECONNREFUSED') this.endpoint.hostRefused(this.now);
    else this.unreachable(code === 'ENETUNREACH' ? 'net' : 'host');
    this.arm();
  }

  /** The host connect failed: free the endpoint and tell the guest by ICMP. */
  private unreachable(reason: 'net' | 'host'): void {
    this.endpoint.hostUnreachable(this.now);
    const icmp = this.ip.unreachable(reason);
    if (icmp) this.nat.emit(icmp);
  }

  /**
   * The host socket is gone. After FINs both ways that is the normal end
   * of its part: the endpoint still owes the guest whatever is in its send
   * buffer, and its FIN, and finishes on its own. Any other close (errors
   * arrive as `error` first) loses the host half, so the guest is reset.
   */
  private hostClosed(): void {
    this.socket = undefined;
    if (this.done || (this.hostFin && this.wroteFin)) return;
    this.endpoint.abort(this.now);
    this.arm();
  }

  // --- endpoint outputs -------------------------------------------------

  segment(repr: Readonly<TcpRepr>): void {
    const length = encodedLength(repr);
    const offload = this.nat.ctx.offload;
    const ip = this.ip;
    const frame = ip.frame(length, offload);
    encodeTcpSegment(frame, ip.l4Offset, repr, ip.pseudoSum(length), offload);
    if (offload) {
      // The kernel finishes the checksum, and cuts a super-frame into
      // MSS-sized segments if anything on the way needs it.
      const payload = repr.payload.length;
      const mss = this.endpoint.mss;
      const gso = payload > mss;
      writeVnetHeader(frame, {
        flags: VnetFlag.NeedsCsum,
        gsoType: gso ? ip.gsoType : GsoType.None,
        hdrLength: ip.l4Offset + length - payload,
        gsoSize: gso ? mss : 0,
        csumStart: ip.l4Offset,
        csumOffset: TCP_CHECKSUM_OFFSET,
      });
    }
    this.nat.emit(frame);
  }

  data(bytes: Uint8Array): void {
    const n = bytes.length;
    const release = this.nat.ctx.releaseFrame;
    let kept = false;
    kept =
      this.socket?.write(bytes, () => {
        // The socket held the frame's own bytes: now they are written.
        if (kept) release?.(bytes);
        if (this.done) return;
        this.endpoint.consumed(n, this.now);
        this.arm();
      }) ?? false;
    if (kept) this.nat.frameKept = true;
  }

  peerFin(): void {
    this.wroteFin = true;
    this.socket?.end();
  }

  established(): void {
    this.nat.ctx.counters.add(this.forwarded ? 'tcp.hostfwd.established' : 'tcp.established');
    // A forwarded host connection is read only once the guest accepted it.
    if (this.forwarded) this.socket?.resume();
  }

  sendRoom(): void {
    if (this.paused) {
      this.paused = false;
      this.socket?.resume();
    }
  }

  freed(reason: TcpFreeReason): void {
    this.stop();
    const counters = this.nat.ctx.counters;
    counters.add(`tcp.freed.${reason}`);
    const st = this.endpoint.stats;
    if (st.retransmits > 0) counters.add('tcp.retransmitted', st.retransmits);
    if (st.fastRetransmits > 0) counters.add('tcp.fast-retransmit', st.fastRetransmits);
    if (st.timeouts > 0) counters.add('tcp.rto', st.timeouts);
    if (st.outOfOrder > 0) counters.add('tcp.out-of-order', st.outOfOrder);
    const socket = this.socket;
    if (socket) {
      // 'refused' with a socket: the guest refused a forwarded connection.
      if (reason === 'peer-reset' || reason === 'timeout' || reason === 'refused') socket.reset();
      else if (reason !== 'closed' && reason !== 'reopen') socket.destroy();
    }
    this.nat.remove(this);
  }

  /** The stack is closing: drop the host socket and every timer, at once. */
  shutdown(): void {
    this.stop();
    this.socket?.destroy();
  }

  /** No more inputs or timers for this flow. */
  private stop(): void {
    this.done = true;
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.connectTimer?.unsubscribe();
    this.connectTimer = undefined;
  }

  // --- the one timer ----------------------------------------------------

  private arm(): void {
    if (this.done) return;
    const deadline = this.endpoint.nextDeadline();
    if (deadline === undefined || (this.timer !== undefined && this.timerAt <= deadline)) return;
    this.timer?.unsubscribe();
    this.timerAt = deadline;
    const scheduler = this.nat.ctx.scheduler;
    this.timer = scheduler.schedule(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        if (this.done) return;
        this.endpoint.onTimer(scheduler.now());
        this.arm();
      },
      Math.max(0, deadline - scheduler.now()),
    );
  }
}

class TcpNat implements TcpNatHandle {
  /** The host socket holds bytes of the frame being handled (see natOperator). */
  frameKept = false;
  private readonly table = new Map<string, Flow>();
  private readonly iss = new IssSource();
  private readonly maxFlows: number;
  private readonly connector: HostTcpConnector;
  /** Gateway ports for forwarded connections (forward-source.ts). */
  private readonly ports = new EphemeralPorts();

  constructor(
    readonly ctx: StackContext,
    readonly emit: (frame: Buffer) => void,
    private readonly options: TcpNatOptions,
  ) {
    this.maxFlows = options.maxFlows ?? DEFAULT_MAX_FLOWS;
    this.connector = options.connector ?? netConnector;
  }

  get flows(): number {
    return this.table.size;
  }

  input(packet: Ipv4Packet): void {
    const sum = pseudoSumV4(packet.src, packet.dst, IpProtocol.TCP, packet.payloadLength);
    // A frame the kernel vouches for (or left partial) is not summed again.
    const verify = trustedChecksum.has(packet.buf) ? undefined : sum;
    const seg = TcpSegment.parse(packet.buf, packet.payloadOffset, packet.payloadLength, verify);
    const key = `${packet.src}:${seg.srcPort}>${packet.dst}:${seg.dstPort}`;
    if (this.toFlow(key, seg)) return;
    const ctx = this.ctx;
    const ip = (): FlowIp => {
      const local = isLocalAddress(ctx, packet.dst);
      return flowIpV4(ctx, packet, local ? localMac(ctx, packet.dst) : ctx.gatewayMac);
    };
    const target = (): TcpTarget =>
      ctx.config.dnsEnabled && packet.dst === ctx.config.dns
        ? this.dnsTarget(seg.dstPort)
        : natTargetV4(ctx, packet.dst);
    this.noFlow(key, seg, ip, target);
  }

  /** A segment from the guest over IPv6 (see the module comment). */
  inputV6(packet: Ipv6Packet): void {
    const { buf, upperOffset, upperLength, src, dst } = packet;
    const sum = pseudoSumV6(src, dst, NextHeader.TCP, upperLength);
    const verify = trustedChecksum.has(buf) ? undefined : sum;
    const seg = TcpSegment.parse(buf, upperOffset, upperLength, verify);
    // Both addresses, 32 bytes from the source on, as one string.
    const at = buf.byteOffset + packet.offset + 8;
    const addresses = Buffer.from(buf.buffer, at, 32).toString('latin1');
    const key = `${addresses}:${seg.srcPort}>${seg.dstPort}`;
    if (this.toFlow(key, seg)) return;
    const ctx = this.ctx;
    const ip = (): FlowIp => {
      const mac = isLocalAddressV6(ctx, dst) ? localMacV6(ctx, dst) : ctx.gatewayMac;
      return flowIpV6(ctx, packet, mac);
    };
    const v6 = ctx.config.ipv6;
    const target = (): TcpTarget =>
      ctx.config.dnsEnabled && v6 !== undefined && ipv6Equals(dst, 0, v6.dns)
        ? this.dnsTarget(seg.dstPort)
        : natTargetV6(ctx, dst);
    this.noFlow(key, seg, ip, target);
  }

  /**
   * Gives `seg` to the flow of `key`, if there is one; false when the
   * segment is left for `noFlow`: there was no flow, or the flow was in
   * TIME-WAIT and this SYN ended it ('reopen'), so the same SYN opens the
   * new incarnation at once instead of waiting for the guest to resend it.
   * The old flow's host socket, ended both ways, is left to finish its
   * writes and close by itself, as after any ordinary close.
   */
  private toFlow(key: string, seg: TcpSegment): boolean {
    const flow = this.table.get(key);
    if (!flow) return false;
    flow.receive(seg);
    return flow.endpoint.freed !== 'reopen';
  }

  /** Where a connection to our DNS address goes: the upstream, for port 53. */
  private dnsTarget(port: number): TcpTarget {
    const server = port === 53 ? this.options.dnsUpstream?.() : undefined;
    return server
      ? { kind: 'dns', address: server.address, port: server.port, family: server.family }
      : { kind: 'unreachable', reason: 'dns-over-tcp' };
  }

  /** A segment for no flow: a SYN opens one, anything else gets a RST. */
  private noFlow(key: string, seg: TcpSegment, ip: () => FlowIp, target: () => TcpTarget): void {
    // A new flow quotes its SYN in any later ICMP error: the frame is kept.
    this.frameKept = true;
    if (seg.control !== TcpControl.Syn || seg.hasAck) {
      this.ctx.counters.add('tcp.no-flow');
      this.reset(ip(), seg);
      return;
    }
    this.open(key, seg, ip(), target());
  }

  private endpointConfig(localPort: number, remotePort: number, ipv6: boolean): TcpConfig {
    return {
      ...this.options.endpoint,
      ipv6,
      localPort,
      remotePort,
      iss: this.iss.draw(),
      mtu: this.ctx.config.mtu,
      gsoBytes: this.ctx.offload ? GSO_BYTES : 0,
      // A guest that stops answering altogether is probed after two
      // idle hours, as Linux does, and its flow freed.
      keepaliveIdleMs: 7_200_000,
      onSendRelease: releaseHostChunk,
    };
  }

  private open(key: string, seg: TcpSegment, ip: FlowIp, target: TcpTarget): void {
    const ctx = this.ctx;
    if (this.table.size >= this.maxFlows) {
      ctx.counters.add('tcp.flow-limit');
      this.reset(ip, seg);
      return;
    }
    if (target.kind === 'unreachable') {
      ctx.counters.add(`tcp.unreachable.${target.reason}`);
      if (target.reason === 'dns-over-tcp') {
        this.reset(ip, seg);
        return;
      }
      const icmp = ip.unreachable('net');
      if (icmp) this.emit(icmp);
      return;
    }
    const flow = new Flow(this, key, ip, this.endpointConfig(seg.dstPort, seg.srcPort, ip.ipv6));
    this.table.set(key, flow);
    flow.receive(seg);
    if (ctx.log.enabled('debug')) ctx.log.debug(`tcp: open ${key} -> ${target.address}`);
    // The host socket's family: the DNS upstream's for the relay, else the guest's.
    const v6 = target.kind === 'dns' ? target.family === 6 : ip.ipv6;
    const local = v6 ? ctx.config.outbound?.v6 : ctx.config.outbound?.v4;
    flow.socket = this.connector(
      {
        host: target.address,
        port: target.kind === 'dns' ? target.port : seg.dstPort,
        ...(local !== undefined && { localAddress: local }),
      },
      flow.host,
    );
    flow.watchConnect(this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  }

  forward(target: ForwardTarget, accept: HostTcpAccept): boolean {
    const ctx = this.ctx;
    const { guestAddr, guestPort, taken } = target;
    const keyOf = (address: Ipv4, port: number): string =>
      `${guestAddr}:${guestPort}>${address}:${port}`;
    const free = (address: Ipv4, port: number): boolean =>
      !this.table.has(keyOf(address, port)) &&
      (address !== ctx.config.gateway || taken?.(port) !== true);
    const source =
      this.table.size < this.maxFlows
        ? forwardSource(ctx, target.client, free, this.ports)
        : undefined;
    if (source === undefined) {
      ctx.counters.add('tcp.hostfwd.flow-limit');
      return false;
    }
    const { address, port } = source;
    // The key the guest's segments will carry (see input()).
    const key = keyOf(address, port);
    const ip = ipv4Framing(target.guestMac, ctx.gatewayMac, address, guestAddr, () => undefined);
    const flow = new Flow(this, key, ip, this.endpointConfig(port, guestPort, false), true);
    this.table.set(key, flow);
    if (ctx.log.enabled('debug')) ctx.log.debug(`tcp: forward to guest ${key}`);
    flow.socket = accept(flow.host);
    flow.activeOpen();
    return true;
  }

  usesPort(guestAddr: Ipv4, guestPort: number, port: number): boolean {
    return this.table.has(`${guestAddr}:${guestPort}>${this.ctx.config.gateway}:${port}`);
  }

  private reset(ip: FlowIp, seg: TcpSegment): void {
    const repr = resetFor(seg);
    if (!repr) return;
    const length = encodedLength(repr);
    const frame = ip.frame(length, false);
    encodeTcpSegment(frame, ip.l4Offset, repr, ip.pseudoSum(length));
    this.emit(frame);
  }

  remove(flow: Flow): void {
    if (this.table.get(flow.key) === flow) this.table.delete(flow.key);
  }

  closeAll(): void {
    for (const flow of this.table.values()) flow.shutdown();
    this.table.clear();
  }
}

/**
 * The TCP route of the IPv4 demux: guest segments in, segments (and ICMP
 * errors) to the guest out. `onHandle` receives a handle for inspection.
 */
export function tcpNat(
  ctx: StackContext,
  options: TcpNatOptions = {},
  onHandle?: (handle: TcpNatHandle) => void,
): OperatorFunction<Ipv4Packet, Buffer> {
  return natOperator<Ipv4Packet>(ctx, options, onHandle, (nat, packet) => nat.input(packet));
}

/** The TCP route of the IPv6 demux, as `tcpNat` (its own flow table). */
export function tcpNatV6(
  ctx: StackContext,
  options: TcpNatOptions = {},
  onHandle?: (handle: TcpNatHandle) => void,
): OperatorFunction<Ipv6Packet, Buffer> {
  return natOperator<Ipv6Packet>(ctx, options, onHandle, (nat, packet) => nat.inputV6(packet));
}

function natOperator<P extends { buf: Uint8Array }>(
  ctx: StackContext,
  options: TcpNatOptions,
  onHandle: ((handle: TcpNatHandle) => void) | undefined,
  input: (nat: TcpNat, packet: P) => void,
): OperatorFunction<P, Buffer> {
  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const nat = new TcpNat(ctx, (frame) => subscriber.next(frame), options);
      onHandle?.(nat);
      const subscription = source
        .pipe(
          handler<P, never>(ctx, 'tcp', (packet) => {
            nat.frameKept = false;
            input(nat, packet);
            // Nothing of the frame is kept (payload went to the kernel or was
            // copied): its memory may be reused (StackContext.releaseFrame).
            if (!nat.frameKept) ctx.releaseFrame?.(packet.buf);
          }),
        )
        .subscribe({ error: (e) => subscriber.error(e), complete: () => subscriber.complete() });
      return () => {
        subscription.unsubscribe();
        nat.closeAll();
      };
    });
}
