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
 * Not done: `--outbound-addr6`; sharing one flow table and one set of
 * limits with the IPv4 NAT (each has its own).
 */
import { defer, finalize, Observable, pipe, Subject, type OperatorFunction } from 'rxjs';
import type { Subscription } from 'rxjs';
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
import { udpConnection, type UdpSocketEvent } from '../streams/udp-socket.js';
import type { StackContext } from './context.js';
import { demux } from './demux.js';
import { DNS_PORT, DnsForwarder, type DnsForwarderOptions } from './dns.js';
import { IPV6_PAYLOAD_OFFSET, icmpv6ErrorFrame, ipv6Frame } from './frames.js';
import { countFailure, handler } from './handler.js';
import { isLocalAddressV6, localMacV6 } from './ipv6.js';
import { natTargetV6 } from './nat.js';
import type { UdpNatOptions } from './udp.js';

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

interface Flow {
  readonly key: string;
  readonly guestMac: Uint8Array;
  readonly guest: Uint8Array;
  readonly guestPort: number;
  readonly remote: Uint8Array;
  readonly remotePort: number;
  readonly outgoing: Subject<Uint8Array>;
  subscription: Subscription | undefined;
  lastActive: number;
  readonly quote: Uint8Array;
  quoteLength: number;
}

export function udpNatV6(
  ctx: StackContext,
  options: UdpNatOptions = {},
): OperatorFunction<Udp6Packet, Buffer> {
  const openSocket = options.openSocket ?? udpConnection;
  const maxFlows = options.maxFlows ?? 1024;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const debug = (text: string): void => {
    if (ctx.log.enabled('debug')) ctx.log.debug(`udp6: ${text}`);
  };

  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const flows = new Map<string, Flow>();
      let timer: Subscription | undefined;

      const close = (flow: Flow, why: string): void => {
        flows.delete(flow.key);
        flow.subscription?.unsubscribe();
        flow.outgoing.complete();
        ctx.counters.add(`udp6.nat.flow-${why}`);
      };

      // One scheduled action, at the least recently used flow's deadline.
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
        if (data.length > UDP_MAX_PAYLOAD_V6) {
          ctx.counters.add('udp6.nat.too-long');
          return;
        }
        touch(flow);
        const mac = localMacV6(ctx, flow.remote);
        const { remote, remotePort, guest, guestPort } = flow;
        subscriber.next(udp6Frame(flow.guestMac, mac, remote, remotePort, guest, guestPort, data));
      };

      const hostError = (flow: Flow, code: string): void => {
        ctx.counters.add(`udp6.nat.host-error.${code}`);
        debug(`host socket error ${code} to [${ipv6ToString(flow.remote)}]:${flow.remotePort}`);
        const unreachable = UNREACHABLE_BY_ERRNO[code];
        if (unreachable === undefined || flow.quoteLength === 0) return;
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
        ctx.counters.add('udp6.nat.icmp-sent');
        subscriber.next(frame);
      };

      const onHost = (flow: Flow, event: UdpSocketEvent): void => {
        try {
          if (event.kind === 'message') toGuest(flow, event.data);
          else hostError(flow, event.code);
        } catch (err) {
          countFailure(ctx, 'udp6', err);
        }
      };

      const open = ({ ip, udp }: Udp6Packet, key: string): Flow | undefined => {
        const target = natTargetV6(ctx, ip.dst);
        if (target.kind === 'unreachable') {
          ctx.counters.add(`udp6.nat.${target.reason}`);
          if (target.reason !== 'host-loopback-disabled') return undefined;
          const type = Icmpv6Type.DestinationUnreachable;
          const icmp = icmpv6ErrorFrame(ctx, ip, type, Icmpv6UnreachableCode.NoRoute);
          if (icmp !== undefined) subscriber.next(icmp);
          return undefined;
        }
        if (flows.size >= maxFlows) {
          ctx.counters.add('udp6.nat.flow-limit');
          return undefined;
        }
        const flow: Flow = {
          key,
          guestMac: Uint8Array.from(ethSource(ip.buf)),
          guest: Uint8Array.from(ip.src),
          guestPort: udp.srcPort,
          remote: Uint8Array.from(ip.dst),
          remotePort: udp.dstPort,
          outgoing: new Subject<Uint8Array>(),
          subscription: undefined,
          lastActive: ctx.scheduler.now(),
          quote: new Uint8Array(QUOTE),
          quoteLength: 0,
        };
        flows.set(key, flow);
        ctx.counters.add('udp6.nat.flow-opened');
        debug(`flow opened to [${target.address}]:${udp.dstPort}`);
        const to = {
          address: target.address,
          port: udp.dstPort,
          family: 6 as const,
          ...(ctx.config.outbound?.v6 !== undefined && { localAddress: ctx.config.outbound.v6 }),
        };
        flow.subscription = openSocket(to, flow.outgoing).subscribe({
          next: (event) => onHost(flow, event),
          error: (err: unknown) => {
            countFailure(ctx, 'udp6', err);
            if (flows.get(key) === flow) close(flow, 'failed');
          },
        });
        arm();
        return flow;
      };

      const fromGuest = (p: Udp6Packet): void => {
        const { ip, udp } = p;
        // Both addresses (32 bytes from the source on) and both ports.
        const at = ip.buf.byteOffset + ip.offset + 8;
        const addresses = Buffer.from(ip.buf.buffer, at, 32).toString('latin1');
        const key = `${addresses}:${udp.srcPort}>${udp.dstPort}`;
        const flow = flows.get(key) ?? open(p, key);
        if (flow === undefined) return;
        touch(flow);
        const type = Icmpv6Type.DestinationUnreachable;
        if (mayReplyWithErrorV6(ip, type)) {
          flow.quoteLength = Math.min(QUOTE, icmpv6ErrorLength(ip.bytes) - ICMPV6_HEADER);
          flow.quote.set(ip.bytes.subarray(0, flow.quoteLength));
        }
        flow.outgoing.next(udp.payload);
      };

      const subscription = source.subscribe({
        next: (p) => {
          try {
            fromGuest(p);
          } catch (err) {
            countFailure(ctx, 'udp6', err);
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
