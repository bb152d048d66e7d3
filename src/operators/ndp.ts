/**
 * The router side of Neighbor Discovery (RFC 4861) for the IPv6 gateway,
 * so that the guest finds its router, configures an address by SLAAC
 * (RFC 4862) and learns the DNS server (RDNSS, RFC 8106).
 *
 * - Neighbour solicitations for the stack's addresses (the gateway
 *   prefix::2, the DNS address prefix::3 unless --disable-dns, and the
 *   router's link-local address) get a solicited advertisement with the
 *   address's MAC (router flag on, override on), sent to the solicitor.
 *   Duplicate address detection for one of them (a solicitation from the
 *   unspecified address) is answered on all-nodes, so that the guest
 *   gives the address up (`ndp.dad.defended`). Others are counted as
 *   `ndp.ns.not-ours`: nobody else lives on this link.
 * - Router solicitations get an advertisement: from the router's
 *   link-local address, router lifetime 1800 s, the prefix on-link and
 *   autonomous (valid 1 day, preferred 4 hours), the link MTU, our
 *   link-layer address, and RDNSS with the DNS address and the O flag
 *   (stateless DHCPv6 for the rest) unless --disable-dns. It goes to the
 *   solicitor when it has an address, else to all-nodes, at most one
 *   multicast every 3 s (MIN_DELAY_BETWEEN_RAS); a later one waits.
 * - Unsolicited advertisements to all-nodes (RFC 4861 6.2.4): at start,
 *   twice more within the first 16 s (MAX_INITIAL_RTR_ADVERTISEMENTS), then
 *   at a random interval between 200 and 600 s. All timing is on
 *   ctx.scheduler.
 *
 * Advertisements from the guest (it is no router) and redirects are
 * counted and dropped (`ndp.ra.ignored`, `ndp.na.received`,
 * `ndp.redirect.ignored`); malformed messages count under the ParseError
 * codes of protocols/ndp.ts. Not done: the guest's neighbour cache is not
 * mirrored: frames to the guest go to the MAC of its last frame.
 */
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { ipv6Equals, parseIpv6, type Ipv6, type Mac } from '../protocols/address.js';
import { ethSource } from '../protocols/ethernet.js';
import { Icmpv6Type } from '../protocols/icmpv6.js';
import { NextHeader } from '../protocols/ipv6.js';
import {
  multicastMac,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterSolicitation,
  routerAdvertisementLength,
  writeNeighborAdvertisement,
  writeRouterAdvertisement,
  type RouterAdvertisementRepr,
} from '../protocols/ndp.js';
import type { StackContext } from './context.js';
import { IPV6_PAYLOAD_OFFSET, ipv6Frame } from './frames.js';
import { countFailure } from './handler.js';
import type { Icmpv6Packet } from './icmpv6.js';
import { isLocalAddressV6, localMacV6 } from './ipv6.js';

export const ALL_NODES: Ipv6 = parseIpv6('ff02::1');
const ALL_NODES_MAC = multicastMac(ALL_NODES);
/** RFC 4861 10: the first advertisements, at most 16 s apart. */
const INITIAL_DELAYS_MS = [0, 4_000, 12_000];
const MIN_RTR_ADV_INTERVAL_MS = 200_000;
const MAX_RTR_ADV_INTERVAL_MS = 600_000;
const MIN_DELAY_BETWEEN_RAS_MS = 3_000;
const ROUTER_LIFETIME_S = 1800;
const NDP_HOP_LIMIT = 255;

export interface NdpRouterOptions {
  /** Uniform in [0, 1), for the periodic interval (tests pass their own). */
  random?: () => number;
}

export function ndpRouter(
  ctx: StackContext,
  options: NdpRouterOptions = {},
): OperatorFunction<Icmpv6Packet, Buffer> {
  const v6 = ctx.config.ipv6;
  if (v6 === undefined) throw new Error('ndpRouter: IPv6 is not enabled in the configuration');
  const random = options.random ?? Math.random;
  const dns = ctx.config.dnsEnabled;
  const advertisement = (dst: Ipv6): RouterAdvertisementRepr => ({
    src: v6.linkLocal,
    dst,
    curHopLimit: 64,
    other: dns,
    routerLifetimeSec: ROUTER_LIFETIME_S,
    prefix: { prefix: v6.prefix, length: v6.prefixLength, onLink: true, autonomous: true },
    mtu: ctx.config.mtu,
    sourceMac: ctx.gatewayMac,
    ...(dns && { rdnss: { servers: [v6.dns] } }),
  });

  const raFrame = (dst: Ipv6, dstMac: Uint8Array): Buffer => {
    const repr = advertisement(dst);
    const frame = ipv6Frame(dstMac, ctx.gatewayMac, {
      src: v6.linkLocal,
      dst,
      nextHeader: NextHeader.ICMPv6,
      payloadLength: routerAdvertisementLength(repr),
      hopLimit: NDP_HOP_LIMIT,
    });
    writeRouterAdvertisement(frame, IPV6_PAYLOAD_OFFSET, repr);
    return frame;
  };

  const naFrame = (target: Ipv6, dst: Ipv6, dstMac: Uint8Array, solicited: boolean): Buffer => {
    const mac: Mac = localMacV6(ctx, target);
    const repr = {
      src: target,
      dst,
      target,
      router: !ipv6Equals(target, 0, v6.dns),
      solicited,
      override: true,
      targetMac: mac,
    };
    const frame = ipv6Frame(dstMac, mac, {
      src: target,
      dst,
      nextHeader: NextHeader.ICMPv6,
      payloadLength: 32,
      hopLimit: NDP_HOP_LIMIT,
    });
    writeNeighborAdvertisement(frame, IPV6_PAYLOAD_OFFSET, repr);
    return frame;
  };

  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const emit = (frame: Buffer): void => subscriber.next(frame);
      let periodic: Subscription | undefined;
      let delayed: Subscription | undefined;
      let sent = 0;
      let lastMulticast = -Infinity;

      const multicastRa = (counter: string): void => {
        lastMulticast = ctx.scheduler.now();
        ctx.counters.add(counter);
        emit(raFrame(ALL_NODES, ALL_NODES_MAC));
      };

      const nextUnsolicited = (): void => {
        multicastRa('ndp.ra.unsolicited');
        sent++;
        const delay =
          sent < INITIAL_DELAYS_MS.length
            ? INITIAL_DELAYS_MS[sent]! - INITIAL_DELAYS_MS[sent - 1]!
            : MIN_RTR_ADV_INTERVAL_MS +
              Math.floor(random() * (MAX_RTR_ADV_INTERVAL_MS - MIN_RTR_ADV_INTERVAL_MS));
        periodic = ctx.scheduler.schedule(nextUnsolicited, delay);
      };

      const onSolicitation = (p: Icmpv6Packet): void => {
        const ns = parseNeighborSolicitation(p.icmp, p.ip.hopLimit, p.ip.src, p.ip.dst);
        if (!isLocalAddressV6(ctx, ns.target)) {
          ctx.counters.add('ndp.ns.not-ours');
          return;
        }
        if (ns.isDad) {
          ctx.counters.add('ndp.dad.defended');
          emit(naFrame(ns.target, ALL_NODES, ALL_NODES_MAC, false));
          return;
        }
        ctx.counters.add('ndp.na.sent');
        const dstMac = ns.sourceLinkLayer ?? ethSource(p.ip.buf);
        emit(naFrame(ns.target, p.ip.src, dstMac, true));
      };

      const onRouterSolicitation = (p: Icmpv6Packet): void => {
        const rs = parseRouterSolicitation(p.icmp, p.ip.hopLimit, p.ip.src);
        if (!p.ip.src.every((b) => b === 0)) {
          ctx.counters.add('ndp.ra.solicited');
          emit(raFrame(p.ip.src, rs.sourceLinkLayer ?? ethSource(p.ip.buf)));
          return;
        }
        const wait = lastMulticast + MIN_DELAY_BETWEEN_RAS_MS - ctx.scheduler.now();
        if (wait <= 0) multicastRa('ndp.ra.solicited');
        else if (delayed === undefined) {
          delayed = ctx.scheduler.schedule(() => {
            delayed = undefined;
            multicastRa('ndp.ra.solicited');
          }, wait);
        } else ctx.counters.add('ndp.rs.rate-limited');
      };

      const onMessage = (p: Icmpv6Packet): void => {
        switch (p.icmp.type) {
          case Icmpv6Type.NeighborSolicitation:
            return onSolicitation(p);
          case Icmpv6Type.RouterSolicitation:
            return onRouterSolicitation(p);
          case Icmpv6Type.NeighborAdvertisement:
            parseNeighborAdvertisement(p.icmp, p.ip.hopLimit, p.ip.dst);
            ctx.counters.add('ndp.na.received');
            return;
          case Icmpv6Type.RouterAdvertisement:
            ctx.counters.add('ndp.ra.ignored');
            return;
          default:
            ctx.counters.add('ndp.redirect.ignored');
        }
      };

      const subscription = source.subscribe({
        next: (p) => {
          try {
            onMessage(p);
          } catch (err) {
            countFailure(ctx, 'ndp', err);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      periodic = ctx.scheduler.schedule(nextUnsolicited, INITIAL_DELAYS_MS[0]);
      return () => {
        subscription.unsubscribe();
        periodic?.unsubscribe();
        delayed?.unsubscribe();
      };
    });
}
