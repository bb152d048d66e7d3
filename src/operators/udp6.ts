/**
 * UDP over IPv6 from the guest (RFC 768, RFC 8200 8.1): validation (the
 * checksum is mandatory over IPv6 and verified once, here, unless the tap
 * vouched for it), then by destination:
 *
 * - stateless DHCPv6 (RFC 8415 as profiled by RFC 3736) on port 547 of
 *   All_DHCP_Relay_Agents_and_Servers (ff02::1:2) or of our addresses: an
 *   INFORMATION-REQUEST gets a REPLY with the DNS address (option 23),
 *   from the router's link-local address (`dhcpv6.replied`); stateful
 *   requests are not answered (`dhcpv6.stateful-unsupported`: the router
 *   advertisement says M=0, so clients do not ask);
 * - DNS on prefix::3 port 53 (unless --disable-dns): the same forwarder as
 *   the IPv4 DNS address (dns.ts's DnsForwarder, one of its own), answers
 *   from prefix::3;
 * - everything else: the UDP NAT below.
 *
 * ## The NAT for IPv6
 *
 * As udp.ts's NAT for IPv4: one connected host socket (udp6) per guest
 * 4-tuple, the gateway prefix::2 mapped to the host's ::1 (refused with
 * ICMPv6 no route under --disable-host-loopback), other addresses reached
 * as addressed, martians (multicast, link-local, loopback, IPv4-mapped,
 * the rest of the guest's /64) dropped as `udp6.nat.martian`; replies come
 * from the address the guest wrote to, one frame per datagram (fragmented
 * by the stack when over the MTU); host errors become ICMPv6 errors
 * quoting the guest's last datagram (port unreachable from the
 * destination; no route, address unreachable and administratively
 * prohibited from the gateway). Flows expire `idleTimeoutMs` (60 s) after
 * their last datagram, on ctx.scheduler; at most `maxFlows` (1024) live.
 *
 * The flow table, sockets and timer are udp-nat.ts's, shared in code with
 * the IPv4 NAT; this file supplies the IPv6 half (`udpNatV6Family`). Not
 * done: sharing one table and one set of limits with the IPv4 NAT (each
 * has its own).
 */
import { defer, finalize, pipe, type OperatorFunction } from 'rxjs';
import { ipv6Equals, ipv6ToString, parseIpv6 } from '../protocols/address.js';
import { pseudoSumV6 } from '../protocols/checksum.js';
import { DHCPV6_SERVER_PORT, Dhcpv6InfoServer, duidLl, parseDhcpv6 } from '../protocols/dhcpv6.js';
import { ethSource } from '../protocols/ethernet.js';
import {
  ICMPV6_HEADER,
  Icmpv6Type,
  Icmpv6UnreachableCode,
  icmpv6ErrorLength,
  mayReplyWithErrorV6,
  writeIcmpv6,
} from '../protocols/icmpv6.js';
import { NextHeader, type Ipv6Packet } from '../protocols/ipv6.js';
import { UDP_HEADER, UdpDatagram, writeUdp } from '../protocols/udp.js';
import { trustedChecksum } from '../streams/offload.js';
import type { StackContext } from './context.js';
import { demux } from './demux.js';
import { DNS_PORT, DnsForwarder, type DnsForwarderOptions } from './dns.js';
import { IPV6_PAYLOAD_OFFSET, icmpv6ErrorFrame, ipv6Frame } from './frames.js';
import { countFailure, handler } from './handler.js';
import { isLocalAddressV6, localMacV6 } from './ipv6.js';
import { natTargetV6 } from './nat.js';
import { udpNatFlows, type UdpFlow, type UdpNatFamily, type UdpNatOptions } from './udp-nat.js';

/** A validated datagram from the guest over IPv6. */
export interface Udp6Packet {
  readonly ip: Ipv6Packet;
  readonly udp: UdpDatagram;
}

export interface UdpV6Options {
  dns?: DnsForwarderOptions;
  nat?: UdpNatOptions;
}

const ALL_DHCP_AGENTS = parseIpv6('ff02::1:2');
/** The largest UDP payload in an IPv6 packet without a jumbogram. */
const UDP_MAX_PAYLOAD_V6 = 0xffff - UDP_HEADER;
/** The quote kept for ICMPv6 errors: the IPv6 header and the UDP header. */
const QUOTE = 48;
const DHCP = 0;
const DNS = 1;
const NAT = 2;

export function udpRouteV6(
  ctx: StackContext,
  options: UdpV6Options = {},
): OperatorFunction<Ipv6Packet, Buffer> {
  const v6 = ctx.config.ipv6;
  if (v6 === undefined) throw new Error('udpRouteV6: IPv6 is not enabled in the configuration');
  const parse = handler<Ipv6Packet, Udp6Packet>(ctx, 'udp6', (ip, emit) => {
    const { buf, upperOffset, upperLength, src, dst } = ip;
    const udp = trustedChecksum.has(buf)
      ? UdpDatagram.parse(buf, upperOffset, upperLength, true)
      : UdpDatagram.parseV6(buf, upperOffset, upperLength, src, dst);
    emit({ ip, udp });
  });
  const key = ({ ip, udp }: Udp6Packet): number => {
    const port = udp.dstPort;
    if (port === DHCPV6_SERVER_PORT) {
      if (ipv6Equals(ip.dst, 0, ALL_DHCP_AGENTS) || isLocalAddressV6(ctx, ip.dst)) return DHCP;
    }
    if (port === DNS_PORT && ctx.config.dnsEnabled && ipv6Equals(ip.dst, 0, v6.dns)) return DNS;
    return NAT;
  };
  const routes = new Map<number, OperatorFunction<Udp6Packet, Buffer>>([
    [DHCP, dhcpv6Server(ctx)],
    [DNS, dnsResponderV6(ctx, options.dns)],
    [NAT, udpNatV6(ctx, options.nat)],
  ]);
  return pipe(
    parse,
    demux(ctx, 'udp6', key, routes, () => {}),
  );
}

/** One frame holding a datagram to the guest, its checksum computed once. */
function udp6Frame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  src: Uint8Array,
  srcPort: number,
  dst: Uint8Array,
  dstPort: number,
  payload: Uint8Array,
): Buffer {
  const length = UDP_HEADER + payload.length;
  const frame = ipv6Frame(dstMac, srcMac, {
    src,
    dst,
    nextHeader: NextHeader.UDP,
    payloadLength: length,
  });
  const pseudo = pseudoSumV6(src, dst, NextHeader.UDP, length);
  writeUdp(frame, IPV6_PAYLOAD_OFFSET, srcPort, dstPort, payload, pseudo);
  return frame;
}

/** Stateless DHCPv6: the DNS address to clients that send INFORMATION-REQUEST. */
export function dhcpv6Server(ctx: StackContext): OperatorFunction<Udp6Packet, Buffer> {
  const v6 = ctx.config.ipv6!;
  const server = new Dhcpv6InfoServer({
    serverDuid: duidLl(ctx.gatewayMac),
    dns: ctx.config.dnsEnabled ? [v6.dns] : [],
  });
  return handler<Udp6Packet, Buffer>(ctx, 'dhcpv6', ({ ip, udp }, emit) => {
    const result = server.handle(parseDhcpv6(udp.buf, udp.payloadOffset, udp.payloadLength));
    if (result.kind === 'none') {
      ctx.counters.add(result.reason);
      return;
    }
    const src = ip.dst[0] === 0xff ? v6.linkLocal : ip.dst;
    const mac = ethSource(ip.buf);
    emit(
      udp6Frame(mac, ctx.gatewayMac, src, DHCPV6_SERVER_PORT, ip.src, udp.srcPort, result.payload),
    );
    ctx.counters.add('dhcpv6.replied');
  });
}

/** DNS on prefix::3, through a DnsForwarder of its own. */
export function dnsResponderV6(
  ctx: StackContext,
  options: DnsForwarderOptions = {},
): OperatorFunction<Udp6Packet, Buffer> {
  return (source) =>
    defer(() => {
      const forwarder = new DnsForwarder(ctx, options);
      return source.pipe(
        handler<Udp6Packet, Buffer>(ctx, 'dns', ({ ip, udp }, emit) => {
          const mac = Uint8Array.from(ethSource(ip.buf));
          const src = Uint8Array.from(ip.dst);
          const dst = Uint8Array.from(ip.src);
          const port = udp.srcPort;
          forwarder.forward(udp.payload, (response) => {
            try {
              emit(udp6Frame(mac, ctx.dnsMac, src, DNS_PORT, dst, port, response));
            } catch (err) {
              countFailure(ctx, 'dns', err);
            }
          });
        }),
        finalize(() => forwarder.close()),
      );
    });
}

/** Host socket errors and the ICMPv6 unreachable code each becomes. */
const UNREACHABLE_BY_ERRNO: Readonly<Record<string, number>> = {
  ECONNREFUSED: Icmpv6UnreachableCode.PortUnreachable,
  ENETUNREACH: Icmpv6UnreachableCode.NoRoute,
  EHOSTUNREACH: Icmpv6UnreachableCode.AddressUnreachable,
  EHOSTDOWN: Icmpv6UnreachableCode.AddressUnreachable,
  EACCES: Icmpv6UnreachableCode.AdminProhibited,
  EPERM: Icmpv6UnreachableCode.AdminProhibited,
};

export function udpNatV6(
  ctx: StackContext,
  options: UdpNatOptions = {},
): OperatorFunction<Udp6Packet, Buffer> {
  return udpNatFlows(ctx, options, () => udpNatV6Family(ctx));
}

/** The IPv6 half of the UDP NAT (udp-nat.ts). */
function udpNatV6Family(ctx: StackContext): UdpNatFamily<Ipv6Packet, Uint8Array> {
  const unreachable = Icmpv6Type.DestinationUnreachable;
  return {
    name: 'udp6',
    socketFamily: 6,
    localAddress: ctx.config.outbound?.v6,
    maxPayload: UDP_MAX_PAYLOAD_V6,
    quoteSize: QUOTE,
    keyed: false,
    key: ({ ip, udp }) => {
      // Both addresses (32 bytes from the source on) and both ports.
      const at = ip.buf.byteOffset + ip.offset + 8;
      const addresses = Buffer.from(ip.buf.buffer, at, 32).toString('latin1');
      return `${addresses}:${udp.srcPort}>${udp.dstPort}`;
    },
    refuse: () => false,
    target: (ip) => natTargetV6(ctx, ip.dst),
    guest: (ip) => Uint8Array.from(ip.src),
    remote: (ip) => Uint8Array.from(ip.dst),
    netUnreachable: (ip) => icmpv6ErrorFrame(ctx, ip, unreachable, Icmpv6UnreachableCode.NoRoute),
    keepQuote: (flow, ip) => {
      if (!mayReplyWithErrorV6(ip, unreachable)) return;
      flow.quoteLength = Math.min(QUOTE, icmpv6ErrorLength(ip.bytes) - ICMPV6_HEADER);
      flow.quote.set(ip.bytes.subarray(0, flow.quoteLength));
    },
    datagramFrame: (flow, data) => {
      const mac = localMacV6(ctx, flow.remote);
      const { remote, remotePort, guest, guestPort } = flow;
      return udp6Frame(flow.guestMac, mac, remote, remotePort, guest, guestPort, data);
    },
    errorFrame: (flow, code) => unreachableFrameV6(ctx, flow, code),
    openedLine: (_key, address, port) => `flow opened to [${address}]:${port}`,
    hostErrorLine: (flow, code) =>
      `host socket error ${code} to [${ipv6ToString(flow.remote)}]:${flow.remotePort}`,
  };
}

/** ICMPv6 destination unreachable for a host socket error, quoting the flow. */
function unreachableFrameV6(
  ctx: StackContext,
  flow: UdpFlow<Uint8Array>,
  code: string,
): Buffer | undefined {
  const unreachable = UNREACHABLE_BY_ERRNO[code];
  if (unreachable === undefined || flow.quoteLength === 0) return undefined;
  const port = unreachable === Icmpv6UnreachableCode.PortUnreachable;
  const from = port ? flow.remote : ctx.config.ipv6!.gateway;
  const quote = flow.quote.subarray(0, flow.quoteLength);
  const frame = ipv6Frame(flow.guestMac, ctx.gatewayMac, {
    src: from,
    dst: flow.guest,
    nextHeader: NextHeader.ICMPv6,
    payloadLength: ICMPV6_HEADER + quote.length,
  });
  const type = Icmpv6Type.DestinationUnreachable;
  writeIcmpv6(frame, IPV6_PAYLOAD_OFFSET, type, unreachable, 0, quote, from, flow.guest);
  return frame;
}
