/**
 * IPv6 frames for operator tests: what a guest with MAC 02:00:00:00:00:01
 * (link-local fe80::ff:fe00:1, SLAAC address fd00::ff:fe00:1) would send,
 * built with the codecs, and readers for what the stack sends back.
 */
import { networkConfig, type NetworkFlags } from '../../src/config.js';
import { parseIpv6, type Ipv6 } from '../../src/protocols/address.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../../src/protocols/ethernet.js';
import { Icmpv6Message, writeIcmpv6 } from '../../src/protocols/icmpv6.js';
import { IPV6_HEADER, Ipv6Packet, NextHeader, writeIpv6Header } from '../../src/protocols/ipv6.js';
import { GATEWAY_MAC, GUEST_MAC } from '../operators/guest-frames.js';

export { GATEWAY_MAC, GUEST_MAC };
export const DNS_MAC = Uint8Array.of(0x52, 0x55, 10, 0, 2, 3);
export const GUEST_LL = parseIpv6('fe80::ff:fe00:1');
export const GUEST6 = parseIpv6('fd00::ff:fe00:1');
export const GATEWAY6 = parseIpv6('fd00::2');
export const DNS6 = parseIpv6('fd00::3');
export const ROUTER_LL = parseIpv6('fe80::5055:aff:fe00:202');
export const ALL_NODES = parseIpv6('ff02::1');
export const ALL_ROUTERS = parseIpv6('ff02::2');
export const UNSPECIFIED = new Uint8Array(16);

export function config6(mtu = 1500, flags: NetworkFlags = {}) {
  return networkConfig(undefined, mtu, { ipv6: true, ...flags });
}

export interface Frame6Options {
  src?: Ipv6;
  dst?: Ipv6;
  hopLimit?: number;
  dstMac?: Uint8Array;
}

/** An Ethernet frame with an IPv6 packet carrying `payload` as `nextHeader`. */
export function frame6(nextHeader: number, payload: Uint8Array, o: Frame6Options = {}): Buffer {
  const frame = Buffer.alloc(ETH_HEADER_LENGTH + IPV6_HEADER + payload.length);
  writeEthernet(frame, 0, o.dstMac ?? GATEWAY_MAC, GUEST_MAC, EtherType.IPv6);
  writeIpv6Header(frame, ETH_HEADER_LENGTH, {
    src: o.src ?? GUEST6,
    dst: o.dst ?? GATEWAY6,
    nextHeader,
    payloadLength: payload.length,
    hopLimit: o.hopLimit ?? 64,
  });
  frame.set(payload, ETH_HEADER_LENGTH + IPV6_HEADER);
  return frame;
}

/** An ICMPv6 message built by `write` (at offset 0 of a buffer of `length`) in a frame. */
export function icmpFrame6(
  length: number,
  write: (buf: Uint8Array, src: Ipv6, dst: Ipv6) => void,
  o: Frame6Options = {},
): Buffer {
  const src = o.src ?? GUEST6;
  const dst = o.dst ?? GATEWAY6;
  const body = new Uint8Array(length);
  write(body, src, dst);
  return frame6(NextHeader.ICMPv6, body, { ...o, src, dst });
}

/** An echo request with `payload`. */
export function echo6(
  payload: Uint8Array,
  o: Frame6Options & { ident?: number; seq?: number } = {},
) {
  return icmpFrame6(
    8 + payload.length,
    (buf, src, dst) =>
      writeIcmpv6(buf, 0, 128, 0, ((o.ident ?? 0x77) << 16) | (o.seq ?? 1), payload, src, dst),
    o,
  );
}

export function ip6(frame: Uint8Array): Ipv6Packet {
  return Ipv6Packet.parse(frame, ETH_HEADER_LENGTH);
}

export function icmp6(frame: Uint8Array): { ip: Ipv6Packet; icmp: Icmpv6Message } {
  const ip = ip6(frame);
  return { ip, icmp: Icmpv6Message.ofPacket(ip) };
}
