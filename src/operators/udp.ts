/**
 * UDP from the guest: validation, the split between the stack's own
 * services (DHCP, DNS) and the NAT, and the NAT itself.
 *
 * `udpInput(ctx, services, nat)` parses each datagram (RFC 768; the
 * checksum is verified once, here, unless the tap vouched for it:
 * streams/offload.ts) and hands it to the first service that
 * accepts it, else to `nat`. The composition in stack.ts puts the DHCP
 * server and the DNS forwarder in front of the NAT.
 *
 * ## The NAT, theory of operation
 *
 * A flow is the guest's 4-tuple (source address and port, destination
 * address and port); each has its own connected host socket
 * (streams/udp-socket.ts) to the NAT target of its destination (nat.ts:
 * the gateway is the host's 127.0.0.1). Being connected, the host socket
 * sees the ICMP errors its peer's host sends back, and accepts datagrams
 * from that peer only, as a full-cone NAT would not: a guest flow gets
 * answers from the address it wrote to and nowhere else.
 *
 * - toward the host: the datagram's payload is written to the flow's
 *   socket as it is (a view, no copy). Datagrams up to 65507 bytes go
 *   through; larger ones arrive fragmented and are reassembled before this.
 * - toward the guest: each datagram from the host becomes one frame from
 *   the destination the guest wrote to (address and port), with its
 *   checksum computed once; one over the MTU is fragmented on its way out.
 * - host errors become ICMP errors to the guest, quoting the guest's last
 *   datagram of the flow (kept as a copy of its header and first 8 bytes):
 *   ECONNREFUSED (the host got port unreachable) as port unreachable from
 *   the destination, ENETUNREACH and EHOSTUNREACH as net and host
 *   unreachable from the gateway, EACCES/EPERM as administratively
 *   prohibited. Each is also counted as `udp.nat.host-error.<code>`.
 *
 * A flow lives `idleTimeoutMs` (default 60 s) past its last datagram in
 * either direction: flows are kept in least-recently-used order, and one
 * action on ctx.scheduler fires at the oldest flow's deadline. At most
 * `maxFlows` (default 1024, each holds a file descriptor) live at once; a
 * datagram that would open one more is dropped as `udp.nat.flow-limit`.
 *
 * Refused outright: the gateway under --disable-host-loopback (ICMP net
 * unreachable, `udp.nat.host-loopback-disabled`); broadcast, multicast and
 * the other addresses no host socket may reach for the guest
 * (`udp.nat.martian`, dropped silently, as RFC 1122 forbids ICMP errors
 * about broadcasts); destination port 0 (`udp.nat.port-zero`). Not done: `--outbound-addr` for UDP (the streams
 * layer takes a local address, nothing passes one yet). IPv6 is
 * udp6.ts's, on the same design.
 */
import { Observable, Subject, pipe, type OperatorFunction, type Subscription } from 'rxjs';
import type { Mac } from '../protocols/address.js';
import { ethSource } from '../protocols/ethernet.js';
import {
  ICMPV4_HEADER,
  Icmpv4Type,
  UnreachableCode,
  icmpv4ErrorLength,
  mayReplyWithError,
  writeIcmpv4ErrorQuoting,
} from '../protocols/icmpv4.js';
import { IpProtocol, type Ipv4Packet } from '../protocols/ipv4.js';
import { UDP_HEADER, UdpDatagram, writeUdpV4 } from '../protocols/udp.js';
import { trustedChecksum } from '../streams/offload.js';
import {
  udpConnection,
  type UdpSocketEvent,
  type UdpSocketFactory,
} from '../streams/udp-socket.js';
import { localMac, type StackContext } from './context.js';
import { demux } from './demux.js';
import { IPV4_PAYLOAD_OFFSET, icmpErrorFrame, ipv4Frame } from './frames.js';
import { countFailure, handler } from './handler.js';
import { natTargetV4 } from './nat.js';

/** A validated datagram from the guest: its IPv4 packet and UDP view. */
export interface UdpPacket {
  readonly ip: Ipv4Packet;
  readonly udp: UdpDatagram;
}

/** One of the stack's own UDP services (DHCP, DNS), tried before the NAT. */
export interface UdpService {
  accepts(packet: UdpPacket): boolean;
  operator: OperatorFunction<UdpPacket, Buffer>;
}

/** The largest UDP payload an IPv4 datagram can carry. */
export const UDP_MAX_PAYLOAD_V4 = 65535 - 20 - UDP_HEADER;

export function udpInput(
  ctx: StackContext,
  services: readonly UdpService[],
  nat: OperatorFunction<UdpPacket, Buffer>,
): OperatorFunction<Ipv4Packet, Buffer> {
  const parse = handler<Ipv4Packet, UdpPacket>(ctx, 'udp', (ip, emit) => {
    const { buf, payloadOffset, payloadLength, src, dst } = ip;
    const udp = trustedChecksum.has(buf)
      ? UdpDatagram.parse(buf, payloadOffset, payloadLength)
      : UdpDatagram.parseV4(buf, payloadOffset, payloadLength, src, dst);
    emit({ ip, udp });
  });
  const route = (p: UdpPacket): number => {
    for (let i = 0; i < services.length; i++) if (services[i]!.accepts(p)) return i;
    return services.length;
  };
  const routes = new Map<number, OperatorFunction<UdpPacket, Buffer>>(
    services.map((s, i) => [i, s.operator]),
  );
  routes.set(services.length, nat);
  return pipe(
    parse,
    demux(ctx, 'udp', route, routes, () => {}),
  );
}

/** Where a reply datagram goes and where it comes from. */
export interface UdpReplyAddress {
  dstMac: Uint8Array;
  srcMac: Mac;
  src: number;
  srcPort: number;
  dst: number;
  dstPort: number;
  /** IPv4 identification; unique per datagram in case it is fragmented. */
  identification: number;
}

/** One frame holding a datagram to the guest, its checksum computed once. */
export function udpFrame(a: UdpReplyAddress, payload: Uint8Array): Buffer {
  const frame = ipv4Frame(a.dstMac, a.srcMac, {
    src: a.src,
    dst: a.dst,
    protocol: IpProtocol.UDP,
    payloadLength: UDP_HEADER + payload.length,
    identification: a.identification,
  });
  writeUdpV4(frame, IPV4_PAYLOAD_OFFSET, a.src, a.dst, a.srcPort, a.dstPort, payload);
  return frame;
}

/** IPv4 identifications for the stack's datagrams: a counter from a random start. */
export function ipIdSource(): () => number {
  let id = Math.floor(Math.random() * 0x10000);
  return () => (id = (id + 1) & 0xffff);
}

export interface UdpNatOptions {
  /** How host sockets are opened (tests pass a fake). */
  openSocket?: UdpSocketFactory;
  /** Flows at most (default 1024). */
  maxFlows?: number;
  /** A flow's life past its last datagram, in ms (default 60 s). */
  idleTimeoutMs?: number;
}

/** Host socket errors and the ICMP unreachable code each becomes. */
const UNREACHABLE_BY_ERRNO: Readonly<Record<string, number>> = {
  ECONNREFUSED: UnreachableCode.Port,
  ENETUNREACH: UnreachableCode.Net,
  EHOSTUNREACH: UnreachableCode.Host,
  EHOSTDOWN: UnreachableCode.Host,
  EACCES: UnreachableCode.AdminProhibited,
  EPERM: UnreachableCode.AdminProhibited,
};

/** The largest quote kept: a 60-byte header and 8 bytes of payload. */
const MAX_QUOTE = 68;

interface Flow {
  readonly key: string;
  readonly guestMac: Uint8Array;
  readonly guestIp: number;
  readonly guestPort: number;
  /** The destination as the guest wrote it (replies come from here). */
  readonly remoteIp: number;
  readonly remotePort: number;
  readonly outgoing: Subject<Uint8Array>;
  subscription: Subscription | undefined;
  lastActive: number;
  /** The guest's last datagram's header and first 8 bytes, for ICMP errors. */
  readonly quote: Uint8Array;
  quoteLength: number;
}

export function udpNat(
  ctx: StackContext,
  options: UdpNatOptions = {},
): OperatorFunction<UdpPacket, Buffer> {
  const openSocket = options.openSocket ?? udpConnection;
  const maxFlows = options.maxFlows ?? 1024;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const { network, netmask } = ctx.config;
  const subnetBroadcast = (network | ~netmask) >>> 0;
  const debug = (text: string): void => {
    if (ctx.log.enabled('debug')) ctx.log.debug(`udp: ${text}`);
  };

  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const flows = new Map<string, Flow>();
      const nextId = ipIdSource();
      let timer: Subscription | undefined;

      const close = (flow: Flow, why: string): void => {
        flows.delete(flow.key);
        flow.subscription?.unsubscribe();
        flow.outgoing.complete();
        ctx.counters.add(`udp.nat.flow-${why}`);
        debug(`${flow.key}: flow ${why}`);
      };

      const arm = (): void => {
        if (timer !== undefined) return;
        const oldest = flows.values().next().value;
        if (oldest === undefined) return;
        const delay = Math.max(0, oldest.lastActive + idleTimeoutMs - ctx.scheduler.now());
        timer = ctx.scheduler.schedule(() => {
          timer = undefined;
          const now = ctx.scheduler.now();
          for (const flow of flows.values()) {
            if (flow.lastActive + idleTimeoutMs > now) break;
            close(flow, 'expired');
          }
          arm();
        }, delay);
      };

      const touch = (flow: Flow): void => {
        flow.lastActive = ctx.scheduler.now();
        flows.delete(flow.key);
        flows.set(flow.key, flow);
      };

      const toGuest = (flow: Flow, data: Buffer): void => {
        if (data.length > UDP_MAX_PAYLOAD_V4) {
          ctx.counters.add('udp.nat.too-long');
          return;
        }
        touch(flow);
        const frame = udpFrame(
          {
            dstMac: flow.guestMac,
            srcMac: localMac(ctx, flow.remoteIp),
            src: flow.remoteIp,
            srcPort: flow.remotePort,
            dst: flow.guestIp,
            dstPort: flow.guestPort,
            identification: nextId(),
          },
          data,
        );
        subscriber.next(frame);
      };

      const hostError = (flow: Flow, code: string): void => {
        ctx.counters.add(`udp.nat.host-error.${code}`);
        debug(`${flow.key}: host socket error ${code}`);
        const unreachable = UNREACHABLE_BY_ERRNO[code];
        if (unreachable === undefined || flow.quoteLength === 0) return;
        const from = unreachable === UnreachableCode.Port ? flow.remoteIp : ctx.config.gateway;
        const quote = flow.quote.subarray(0, flow.quoteLength);
        const frame = ipv4Frame(flow.guestMac, ctx.gatewayMac, {
          src: from,
          dst: flow.guestIp,
          protocol: IpProtocol.ICMP,
          payloadLength: ICMPV4_HEADER + quote.length,
          identification: nextId(),
        });
        writeIcmpv4ErrorQuoting(
          frame,
          IPV4_PAYLOAD_OFFSET,
          Icmpv4Type.DestinationUnreachable,
          unreachable,
          quote,
        );
        ctx.counters.add('udp.nat.icmp-sent');
        subscriber.next(frame);
      };

      const onHost = (flow: Flow, event: UdpSocketEvent): void => {
        try {
          if (event.kind === 'message') toGuest(flow, event.data);
          else hostError(flow, event.code);
        } catch (err) {
          countFailure(ctx, 'udp', err);
        }
      };

      const open = (p: UdpPacket, key: string): Flow | undefined => {
        const { ip, udp } = p;
        const dst = ip.dst;
        if (udp.dstPort === 0) {
          ctx.counters.add('udp.nat.port-zero');
          debug(`${key}: dropped: destination port 0`);
          return undefined;
        }
        if (dst === subnetBroadcast || ip.src === 0 || ip.src === subnetBroadcast) {
          ctx.counters.add('udp.nat.martian');
          debug(`${key}: dropped: broadcast or no source`);
          return undefined;
        }
        const target = natTargetV4(ctx, dst);
        if (target.kind === 'unreachable') {
          ctx.counters.add(`udp.nat.${target.reason}`);
          debug(`${key}: dropped: ${target.reason}`);
          if (target.reason !== 'host-loopback-disabled') return undefined;
          const icmp = icmpErrorFrame(
            ctx,
            ip,
            Icmpv4Type.DestinationUnreachable,
            UnreachableCode.Net,
          );
          if (icmp !== undefined) subscriber.next(icmp);
          return undefined;
        }
        if (flows.size >= maxFlows) {
          ctx.counters.add('udp.nat.flow-limit');
          debug(`${key}: flow limit ${maxFlows} reached`);
          return undefined;
        }
        const flow: Flow = {
          key,
          guestMac: Uint8Array.from(ethSource(ip.buf)),
          guestIp: ip.src,
          guestPort: udp.srcPort,
          remoteIp: dst,
          remotePort: udp.dstPort,
          outgoing: new Subject<Uint8Array>(),
          subscription: undefined,
          lastActive: ctx.scheduler.now(),
          quote: new Uint8Array(MAX_QUOTE),
          quoteLength: 0,
        };
        flows.set(key, flow);
        ctx.counters.add('udp.nat.flow-opened');
        debug(`${key}: flow opened to ${target.address}:${udp.dstPort}`);
        const target$ = {
          address: target.address,
          port: udp.dstPort,
          family: 4 as const,
          ...(ctx.config.outbound?.v4 !== undefined && { localAddress: ctx.config.outbound.v4 }),
        };
        flow.subscription = openSocket(target$, flow.outgoing).subscribe({
          next: (event) => onHost(flow, event),
          error: (err: unknown) => {
            countFailure(ctx, 'udp', err);
            if (flows.get(key) === flow) close(flow, 'failed');
          },
        });
        arm();
        return flow;
      };

      const fromGuest = (p: UdpPacket): void => {
        const { ip, udp } = p;
        const key = `${ip.src}:${udp.srcPort}>${ip.dst}:${udp.dstPort}`;
        const flow = flows.get(key) ?? open(p, key);
        if (flow === undefined) return;
        touch(flow);
        if (mayReplyWithError(ip)) {
          flow.quoteLength = icmpv4ErrorLength(ip) - ICMPV4_HEADER;
          flow.quote.set(ip.buf.subarray(ip.offset, ip.offset + flow.quoteLength));
        }
        flow.outgoing.next(udp.payload);
      };

      const subscription = source.subscribe({
        next: (p) => {
          try {
            fromGuest(p);
          } catch (err) {
            countFailure(ctx, 'udp', err);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        subscription.unsubscribe();
        timer?.unsubscribe();
        for (const flow of [...flows.values()]) close(flow, 'closed');
      };
    });
}
