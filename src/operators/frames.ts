/**
 * Building frames to the guest: one allocation per frame, headers written
 * in place, the payload region left for the caller to fill.
 */
import type { Mac } from '../protocols/address.js';
import { ETH_HEADER_LENGTH, EtherType, ethSource, writeEthernet } from '../protocols/ethernet.js';
import { icmpv4ErrorLength, mayReplyWithError, writeIcmpv4Error } from '../protocols/icmpv4.js';
import {
  IPV4_MIN_HEADER,
  IpProtocol,
  writeIpv4Header,
  type Ipv4Packet,
  type Ipv4Repr,
} from '../protocols/ipv4.js';
import { icmpv6ErrorLength, mayReplyWithErrorV6, writeIcmpv6Error } from '../protocols/icmpv6.js';
import {
  IPV6_HEADER,
  NextHeader,
  writeIpv6Header,
  type Ipv6Packet,
  type Ipv6Repr,
} from '../protocols/ipv6.js';
import { headedFrame } from '../streams/offload.js';
import type { StackContext } from './context.js';

export const IPV4_PAYLOAD_OFFSET = ETH_HEADER_LENGTH + IPV4_MIN_HEADER;
export const IPV6_PAYLOAD_OFFSET = ETH_HEADER_LENGTH + IPV6_HEADER;

/**
 * A frame with Ethernet and IPv4 headers written; the IPv4 payload starts
 * at IPV4_PAYLOAD_OFFSET and is `repr.payloadLength` bytes long. `headed`
 * leaves room for a virtio-net header before it (streams/offload.ts).
 */
export function ipv4Frame(dstMac: Uint8Array, srcMac: Mac, repr: Ipv4Repr, headed = false): Buffer {
  const length = IPV4_PAYLOAD_OFFSET + repr.payloadLength;
  const frame = headed ? headedFrame(length) : Buffer.allocUnsafe(length);
  writeEthernet(frame, 0, dstMac, srcMac, EtherType.IPv4);
  writeIpv4Header(frame, ETH_HEADER_LENGTH, repr);
  return frame;
}

/**
 * An ICMP error to the guest about one of its packets (RFC 792), from
 * `from` (the address the error speaks for: the gateway, or the host that
 * refused), or undefined where RFC 1122 forbids an error about that packet.
 */
export function icmpErrorFrame(
  ctx: StackContext,
  offending: Ipv4Packet,
  type: number,
  code: number,
  from: number = ctx.config.gateway,
  rest = 0,
): Buffer | undefined {
  if (!mayReplyWithError(offending)) return undefined;
  const frame = ipv4Frame(ethSource(offending.buf), ctx.gatewayMac, {
    src: from,
    dst: offending.src,
    protocol: IpProtocol.ICMP,
    payloadLength: icmpv4ErrorLength(offending),
  });
  writeIcmpv4Error(frame, IPV4_PAYLOAD_OFFSET, type, code, offending, rest);
  return frame;
}

/**
 * A frame with Ethernet and IPv6 headers written (no extension headers);
 * the payload starts at IPV6_PAYLOAD_OFFSET and is `repr.payloadLength`
 * bytes long. `headed` as for ipv4Frame.
 */
export function ipv6Frame(dstMac: Uint8Array, srcMac: Mac, repr: Ipv6Repr, headed = false): Buffer {
  const length = IPV6_PAYLOAD_OFFSET + repr.payloadLength;
  const frame = headed ? headedFrame(length) : Buffer.allocUnsafe(length);
  writeEthernet(frame, 0, dstMac, srcMac, EtherType.IPv6);
  writeIpv6Header(frame, ETH_HEADER_LENGTH, repr);
  return frame;
}

/**
 * An ICMPv6 error to the guest about one of its packets (RFC 4443), from
 * `from` (default: the IPv6 gateway), or undefined where RFC 4443 2.4 (e)
 * forbids one. Needs IPv6 enabled in ctx.config.
 */
export function icmpv6ErrorFrame(
  ctx: StackContext,
  offending: Ipv6Packet,
  type: number,
  code: number,
  from?: Uint8Array,
  rest = 0,
): Buffer | undefined {
  const v6 = ctx.config.ipv6;
  if (v6 === undefined || !mayReplyWithErrorV6(offending, type, code)) return undefined;
  const src = from ?? v6.gateway;
  const length = icmpv6ErrorLength(offending.bytes);
  const frame = ipv6Frame(ethSource(offending.buf), ctx.gatewayMac, {
    src,
    dst: offending.src,
    nextHeader: NextHeader.ICMPv6,
    payloadLength: length,
  });
  writeIcmpv6Error(
    frame,
    IPV6_PAYLOAD_OFFSET,
    type,
    code,
    offending.bytes,
    src,
    offending.src,
    rest,
  );
  return frame;
}
