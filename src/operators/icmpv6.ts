/**
 * The stack's ICMPv6 route (RFC 4443): each message is checked once
 * (length and checksum over the pseudo header) and handed on by type:
 *
 * - neighbour discovery (types 133-137) to the router (ndp.ts);
 * - echo requests to the stack's own addresses (gateway, DNS, the router's
 *   link-local address) or to all-nodes ff02::1 are answered here, the
 *   request's bytes with type 129, from the address asked (all-nodes from
 *   the link-local address);
 * - echo requests to any other address go through host ping sockets
 *   (icmpv6-nat.ts) when the context has them, else are counted as
 *   `icmpv6.echo.not-local` and dropped.
 *
 * Everything else is counted and dropped: multicast listener messages
 * (`icmpv6.mld.ignored`: we forward no multicast), errors the guest sends
 * (`icmpv6.error-received`), other types (`icmpv6.unhandled-type`).
 */
import { pipe, type OperatorFunction } from 'rxjs';
import { ipv6Equals } from '../protocols/address.js';
import { ethSource } from '../protocols/ethernet.js';
import { Icmpv6Message, Icmpv6Type, writeIcmpv6EchoReply } from '../protocols/icmpv6.js';
import { NextHeader, type Ipv6Packet } from '../protocols/ipv6.js';
import type { StackContext } from './context.js';
import { demux } from './demux.js';
import { IPV6_PAYLOAD_OFFSET, ipv6Frame } from './frames.js';
import { handler } from './handler.js';
import { icmpv6EchoNat } from './icmpv6-nat.js';
import { isLocalAddressV6, localMacV6 } from './ipv6.js';
import { ALL_NODES, ndpRouter, type NdpRouterOptions } from './ndp.js';

/** A validated ICMPv6 message with its IPv6 packet. */
export interface Icmpv6Packet {
  readonly ip: Ipv6Packet;
  readonly icmp: Icmpv6Message;
}

const NDP = 0;
const ECHO_LOCAL = 1;
const ECHO_OTHER = 2;
const MLD_TYPES: ReadonlySet<number> = new Set([130, 131, 132, 143]);

export function icmpv6Route(
  ctx: StackContext,
  options: { ndp?: NdpRouterOptions } = {},
): OperatorFunction<Ipv6Packet, Buffer> {
  const parse = handler<Ipv6Packet, Icmpv6Packet>(ctx, 'icmpv6', (ip, emit) => {
    emit({ ip, icmp: Icmpv6Message.ofPacket(ip) });
  });
  const key = ({ ip, icmp }: Icmpv6Packet): number => {
    const type = icmp.type;
    if (type >= Icmpv6Type.RouterSolicitation && type <= Icmpv6Type.Redirect) return NDP;
    if (type !== Icmpv6Type.EchoRequest) return -type;
    const local = isLocalAddressV6(ctx, ip.dst) || ipv6Equals(ip.dst, 0, ALL_NODES);
    return local ? ECHO_LOCAL : ECHO_OTHER;
  };
  const routes = new Map<number, OperatorFunction<Icmpv6Packet, Buffer>>([
    [NDP, ndpRouter(ctx, options.ndp)],
    [ECHO_LOCAL, echoResponderV6(ctx)],
  ]);
  const sockets = ctx.pingSockets;
  if (sockets !== undefined) routes.set(ECHO_OTHER, icmpv6EchoNat(ctx, sockets));
  const unrouted = (_: Icmpv6Packet, k: number): void => {
    if (k === ECHO_OTHER) ctx.counters.add('icmpv6.echo.not-local');
    else if (MLD_TYPES.has(-k)) ctx.counters.add('icmpv6.mld.ignored');
    else if (-k < 128) ctx.counters.add('icmpv6.error-received');
    else ctx.counters.add('icmpv6.unhandled-type');
  };
  return pipe(parse, demux(ctx, 'icmpv6', key, routes, unrouted));
}

/** Echo replies from the stack's own addresses. */
export function echoResponderV6(ctx: StackContext): OperatorFunction<Icmpv6Packet, Buffer> {
  const v6 = ctx.config.ipv6;
  return handler<Icmpv6Packet, Buffer>(ctx, 'icmpv6', ({ ip, icmp }, emit) => {
    if (v6 === undefined) return;
    if (ip.src.every((b) => b === 0)) {
      ctx.counters.add('icmpv6.echo.unspecified-source');
      return;
    }
    const src = ip.dst[0] === 0xff ? v6.linkLocal : ip.dst;
    const reply = ipv6Frame(ethSource(ip.buf), localMacV6(ctx, src), {
      src,
      dst: ip.src,
      nextHeader: NextHeader.ICMPv6,
      payloadLength: icmp.length,
      trafficClass: ip.trafficClass,
    });
    writeIcmpv6EchoReply(icmp, reply, IPV6_PAYLOAD_OFFSET, src, ip.src);
    ctx.counters.add('icmpv6.echo.replied');
    emit(reply);
  });
}
