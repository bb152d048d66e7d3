/**
 * IPv6 input (RFC 8200): validate the header of an Ethernet frame's
 * payload, walk its extension headers (protocols/ipv6.ts), reassemble
 * fragments, and route the packet by its upper-layer protocol. A packet's
 * view keeps the whole frame, so a handler can still read the guest's MAC
 * at buf[6..12].
 *
 * Fragments go into an Ipv6Reassembler (4 MiB and 256 datagrams at most,
 * 60 s per datagram as RFC 8200 4.5 says, by the reassembler's defaults),
 * timed on ctx.scheduler with one scheduled action at the reassembler's
 * next deadline (the glue is fragments.ts's `reassembly`, shared with
 * IPv4); the whole packet
 * comes out in a new frame carrying the Ethernet header of the fragment
 * that completed it. Drops are counted as `ipv6.fragment.<reason>`
 * (timeout, evicted, overlap, duplicate, inconsistent, oversize,
 * bad-length, too-large); `ipv6.fragment.reassembled` counts packets made
 * whole. When a datagram times out after its offset-zero fragment came,
 * the guest gets the ICMPv6 time exceeded, code 1, that RFC 8200 4.5 asks
 * for (RFC 4443 3.3), from the gateway, quoting as much of that fragment as
 * fits in the minimum MTU, unless RFC 4443 2.4 (e) forbids it (an ICMPv6
 * error, a multicast destination); counted as
 * `ipv6.fragment.time-exceeded-sent`. `ipv6Demux` sends it among the
 * routes' frames; `ipv6Input` to `options.toGuest`, if given.
 *
 * Packets from a multicast source are dropped as `ipv6.martian-source`;
 * upper protocols without a route as `ipv6.unhandled-protocol`.
 *
 * `ipv6Fragmenter(ctx)` is the last step towards the guest: an IPv6 frame
 * longer than the MTU whose upper protocol is not TCP (the stack's UDP
 * and ICMPv6 answers; TCP sizes its segments by MSS or hands the kernel a
 * GSO super-frame on purpose) is split into fragments, counted as
 * `ipv6.fragment.sent`.
 *
 * Also here: which IPv6 addresses are the stack's own.
 */
import { pipe, type OperatorFunction } from 'rxjs';
import { ipv6Equals, type Mac } from '../protocols/address.js';
import { ETH_HEADER_LENGTH, EtherType, etherType } from '../protocols/ethernet.js';
import { Icmpv6Type } from '../protocols/icmpv6.js';
import { Ipv6Packet, Ipv6Reassembler, NextHeader, fragmentIpv6 } from '../protocols/ipv6.js';
import type { StackContext } from './context.js';
import { demux, type Routes } from './demux.js';
import {
  emitFragments,
  inputThenRoute,
  reassembly,
  type ReassemblyOperatorOptions,
} from './fragments.js';
import { icmpv6ErrorFrame } from './frames.js';
import { handler } from './handler.js';

const SRC = 8;
const DST = 24;

/** Whether the IPv6 address at buf[offset] is one the stack answers for itself. */
export function isLocalAddressV6(ctx: StackContext, buf: Uint8Array, offset = 0): boolean {
  const v6 = ctx.config.ipv6;
  if (v6 === undefined) return false;
  return (
    ipv6Equals(buf, offset, v6.gateway) ||
    ipv6Equals(buf, offset, v6.linkLocal) ||
    (ctx.config.dnsEnabled && ipv6Equals(buf, offset, v6.dns))
  );
}

/** The MAC the stack uses for one of its own IPv6 addresses. */
export function localMacV6(ctx: StackContext, buf: Uint8Array, offset = 0): Mac {
  const v6 = ctx.config.ipv6;
  return v6 !== undefined && ipv6Equals(buf, offset, v6.dns) ? ctx.dnsMac : ctx.gatewayMac;
}

export function ipv6Input(
  ctx: StackContext,
  options: ReassemblyOperatorOptions = {},
): OperatorFunction<Buffer, Ipv6Packet> {
  return pipe(
    handler<Buffer, Ipv6Packet>(ctx, 'ipv6', (frame, emit) => {
      const packet = Ipv6Packet.parse(frame, ETH_HEADER_LENGTH);
      if (frame[ETH_HEADER_LENGTH + SRC] === 0xff) {
        ctx.counters.add('ipv6.martian-source');
        return;
      }
      emit(packet);
    }),
    ipv6Reassembly(ctx, options),
  );
}

export function ipv6Demux(
  ctx: StackContext,
  routes: Routes<Ipv6Packet, Buffer>,
): OperatorFunction<Buffer, Buffer> {
  const unrouted = (p: Ipv6Packet): void => {
    ctx.counters.add('ipv6.unhandled-protocol');
    if (ctx.log.enabled('debug')) ctx.log.debug(`ipv6: no handler for protocol ${p.upperProtocol}`);
  };
  return inputThenRoute(
    (toGuest) => ipv6Input(ctx, { toGuest }),
    demux(ctx, 'ipv6', (p) => p.upperProtocol, routes, unrouted),
  );
}

export function ipv6Reassembly(
  ctx: StackContext,
  options: ReassemblyOperatorOptions = {},
): OperatorFunction<Ipv6Packet, Ipv6Packet> {
  return reassembly(
    ctx,
    {
      name: 'ipv6',
      isFragment: (packet) => packet.fragment !== undefined,
      reassembler: () => new Ipv6Reassembler(options),
      parse: (frame) => Ipv6Packet.parse(frame, ETH_HEADER_LENGTH),
      // Code 1: fragment reassembly time exceeded (RFC 4443 3.3).
      timeExceeded: (first) => icmpv6ErrorFrame(ctx, first, Icmpv6Type.TimeExceeded, 1),
    },
    options.toGuest,
  );
}

export function ipv6Fragmenter(ctx: StackContext): OperatorFunction<Buffer, Buffer> {
  const mtu = ctx.config.mtu;
  let id = Math.floor(Math.random() * 0x100000000);
  return handler<Buffer, Buffer>(ctx, 'ipv6', (frame, emit) => {
    if (frame.length <= ETH_HEADER_LENGTH + mtu || etherType(frame) !== EtherType.IPv6) {
      emit(frame);
      return;
    }
    const packet = Ipv6Packet.parse(frame, ETH_HEADER_LENGTH);
    if (packet.upperProtocol === NextHeader.TCP) {
      emit(frame);
      return;
    }
    id = (id + 1) >>> 0;
    const fragments = fragmentIpv6(packet, mtu, id);
    ctx.counters.add('ipv6.fragment.sent', fragments.length);
    emitFragments(frame, fragments, emit);
  });
}

/** The destination address of the IPv6 packet in `frame`, as a view. */
export function ipv6Destination(frame: Uint8Array): Uint8Array {
  return frame.subarray(ETH_HEADER_LENGTH + DST, ETH_HEADER_LENGTH + DST + 16);
}
