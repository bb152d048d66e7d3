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
 * about broadcasts); destination port 0 (`udp.nat.port-zero`).
 *
 * The flow table, sockets and timer are udp-nat.ts's, shared with the IPv6
 * NAT (udp6.ts); this file supplies the IPv4 half (`udpNatV4Family`).
 */
import { pipe, type OperatorFunction } from 'rxjs';
import type { Mac } from '../protocols/address.js';
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
import { localMac, type StackContext } from './context.js';
import { demux } from './demux.js';
import { IPV4_PAYLOAD_OFFSET, icmpErrorFrame, ipv4Frame } from './frames.js';
import { handler } from './handler.js';
import { natTargetV4 } from './nat.js';
import { udpNatFlows, type UdpFlow, type UdpNatFamily, type UdpNatOptions } from './udp-nat.js';

export type { UdpNatOptions } from './udp-nat.js';

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

export function udpNat(
  ctx: StackContext,
  options: UdpNatOptions = {},
): OperatorFunction<UdpPacket, Buffer> {
  return udpNatFlows(ctx, options, () => udpNatV4Family(ctx));
}

/** The IPv4 half of the UDP NAT (udp-nat.ts), one per subscription. */
function udpNatV4Family(ctx: StackContext): UdpNatFamily<Ipv4Packet, number> {
  const { network, netmask } = ctx.config;
  const subnetBroadcast = (network | ~netmask) >>> 0;
  const nextId = ipIdSource();
  const refused = (key: string, counter: string, why: string): boolean => {
    ctx.counters.add(`udp.nat.${counter}`);
    if (ctx.log.enabled('debug')) ctx.log.debug(`udp: ${key}: dropped: ${why}`);
    return true;
  };
  return {
    name: 'udp',
    socketFamily: 4,
    localAddress: ctx.config.outbound?.v4,
    maxPayload: UDP_MAX_PAYLOAD_V4,
    quoteSize: MAX_QUOTE,
    keyed: true,
    key: ({ ip, udp }) => `${ip.src}:${udp.srcPort}>${ip.dst}:${udp.dstPort}`,
    refuse: ({ ip, udp }, key) => {
      if (udp.dstPort === 0) return refused(key, 'port-zero', 'destination port 0');
      if (ip.dst === subnetBroadcast || ip.src === 0 || ip.src === subnetBroadcast) {
        return refused(key, 'martian', 'broadcast or no source');
      }
      return false;
    },
    target: (ip) => natTargetV4(ctx, ip.dst),
    guest: (ip) => ip.src,
    remote: (ip) => ip.dst,
    netUnreachable: (ip) =>
      icmpErrorFrame(ctx, ip, Icmpv4Type.DestinationUnreachable, UnreachableCode.Net),
    keepQuote: (flow, ip) => {
      if (!mayReplyWithError(ip)) return;
      flow.quoteLength = icmpv4ErrorLength(ip) - ICMPV4_HEADER;
      flow.quote.set(ip.buf.subarray(ip.offset, ip.offset + flow.quoteLength));
    },
    datagramFrame: (flow, data) =>
      udpFrame(
        {
          dstMac: flow.guestMac,
          srcMac: localMac(ctx, flow.remote),
          src: flow.remote,
          srcPort: flow.remotePort,
          dst: flow.guest,
          dstPort: flow.guestPort,
          identification: nextId(),
        },
        data,
      ),
    errorFrame: (flow, code) => unreachableFrame(ctx, flow, code, nextId),
    openedLine: (key, address, port) => `${key}: flow opened to ${address}:${port}`,
    hostErrorLine: (flow, code) => `${flow.key}: host socket error ${code}`,
  };
}

/** ICMP destination unreachable for a host socket error, quoting the flow. */
function unreachableFrame(
  ctx: StackContext,
  flow: UdpFlow<number>,
  code: string,
  nextId: () => number,
): Buffer | undefined {
  const unreachable = UNREACHABLE_BY_ERRNO[code];
  if (unreachable === undefined || flow.quoteLength === 0) return undefined;
  const from = unreachable === UnreachableCode.Port ? flow.remote : ctx.config.gateway;
  const quote = flow.quote.subarray(0, flow.quoteLength);
  const frame = ipv4Frame(flow.guestMac, ctx.gatewayMac, {
    src: from,
    dst: flow.guest,
    protocol: IpProtocol.ICMP,
    payloadLength: ICMPV4_HEADER + quote.length,
    identification: nextId(),
  });
  const type = Icmpv4Type.DestinationUnreachable;
  writeIcmpv4ErrorQuoting(frame, IPV4_PAYLOAD_OFFSET, type, unreachable, quote);
  return frame;
}
