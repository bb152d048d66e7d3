/**
 * The stack, composed in one place: Ethernet demux, then per EtherType the
 * ARP responder and the IPv4 input with its per-protocol handlers, and
 * with IPv6 enabled the IPv6 input with its own. Every
 * route is an ordinary RxJS operator from guest frames to guest frames;
 * this module only wires them together.
 */
import { Observable, pipe, type OperatorFunction } from 'rxjs';
import { EtherType } from '../protocols/ethernet.js';
import { IpProtocol, type Ipv4Packet } from '../protocols/ipv4.js';
import { NextHeader, type Ipv6Packet } from '../protocols/ipv6.js';
import { arpResponder } from './arp.js';
import type { StackContext } from './context.js';
import { ethernetDemux } from './ethernet.js';
import { ipv4Fragmenter } from './fragments.js';
import { icmpv4Route } from './icmp-nat.js';
import { ipv4Demux } from './ipv4.js';
import { icmpv6Route } from './icmpv6.js';
import { ipv6Demux, ipv6Fragmenter } from './ipv6.js';
import { tcpNat, tcpNatV6, type TcpNatOptions } from './tcp.js';
import { dhcpService } from './dhcp.js';
import { DnsForwarder, dnsService, type DnsForwarderOptions } from './dns.js';
import { udpInput, udpNat, type UdpNatOptions } from './udp.js';
import { udpRouteV6 } from './udp6.js';
import type { HostForwarder } from './hostfwd.js';

/** Settings of the stack's services beyond the network's addresses. */
export interface StackOptions {
  udp?: UdpNatOptions;
  /** The TCP NAT's settings (the connect timeout, the flow limit, ...). */
  tcp?: Omit<TcpNatOptions, 'dnsUpstream'>;
  /** The DNS forwarder's upstream (`--dns-upstream`, `--resolv-conf`). */
  dns?: DnsForwarderOptions;
  /** Port forwarding from the host (the control socket's add_hostfwd). */
  hostfwd?: HostForwarder;
}

export function slirpStack(
  ctx: StackContext,
  options: StackOptions = {},
): OperatorFunction<Buffer, Buffer> {
  // DHCP and DNS are the stack's own; every other datagram goes to the NAT.
  // Replies to UDP forwards are taken before the NAT would send them to 127.0.0.1.
  const hostfwd = options.hostfwd;
  const udpServices = [dhcpService(ctx), dnsService(ctx, options.dns)];
  if (hostfwd !== undefined) udpServices.push(hostfwd.udpService());
  // DNS over TCP is relayed to the same upstream the UDP forwarder uses.
  const upstream = new DnsForwarder(ctx, options.dns);
  const tcp = { ...options.tcp, dnsUpstream: () => upstream.server() };
  const ipv4Routes = new Map<number, OperatorFunction<Ipv4Packet, Buffer>>([
    [IpProtocol.ICMP, icmpv4Route(ctx)],
    [IpProtocol.TCP, tcpNat(ctx, tcp, (handle) => options.hostfwd?.attachTcp(handle))],
    [IpProtocol.UDP, udpInput(ctx, udpServices, udpNat(ctx, options.udp))],
  ]);
  const routes = new Map<number, OperatorFunction<Buffer, Buffer>>([
    [EtherType.ARP, arpResponder(ctx)],
    [EtherType.IPv4, pipe(ipv4Demux(ctx, ipv4Routes), ipv4Fragmenter(ctx))],
  ]);
  if (ctx.config.ipv6 !== undefined) {
    const ipv6Routes = new Map<number, OperatorFunction<Ipv6Packet, Buffer>>([
      [NextHeader.ICMPv6, icmpv6Route(ctx)],
      [NextHeader.TCP, tcpNatV6(ctx, tcp)],
      [NextHeader.UDP, udpRouteV6(ctx, { dns: options.dns, nat: options.udp })],
    ]);
    routes.set(EtherType.IPv6, pipe(ipv6Demux(ctx, ipv6Routes), ipv6Fragmenter(ctx)));
  }
  const stack = ethernetDemux(ctx, routes);
  if (hostfwd === undefined) return stack;
  // Forwarded UDP datagrams over the MTU are fragmented like the NAT's.
  const extra$ = hostfwd.frames$.pipe(ipv4Fragmenter(ctx));
  return (source) => withFrames(stack(source), extra$);
}

/** `main$`, plus the frames of `extra$` while `main$` lasts. */
function withFrames(main$: Observable<Buffer>, extra$: Observable<Buffer>): Observable<Buffer> {
  return new Observable<Buffer>((subscriber) => {
    const extra = extra$.subscribe((frame) => subscriber.next(frame));
    const main = main$.subscribe(subscriber);
    return () => {
      extra.unsubscribe();
      main.unsubscribe();
    };
  });
}
