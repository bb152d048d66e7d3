/**
 * ICMPv6 (RFC 4443): the message view, echo reply, and error messages.
 * Neighbour discovery messages are ICMPv6 too and live in ndp.ts.
 *
 * Interface:
 * - `Icmpv6Message.parse(buf, offset, length, src, dst)` checks once that
 *   the 8-byte header is there and that the checksum over the IPv6 pseudo
 *   header (RFC 8200 8.1) holds; accessors cannot fail. ParseError codes:
 *   `icmpv6.truncated`, `icmpv6.bad-checksum`.
 * - `writeIcmpv6EchoReply(request, out, outOffset, src, dst)` writes the
 *   reply (type 129, same body) with the checksum for the reply's own
 *   addresses, which may differ from the request's (a ping to a multicast
 *   address is answered from a unicast one).
 * - `writeIcmpv6Error(out, outOffset, type, code, offending, src, dst,
 *   rest)` writes destination unreachable / packet too big / time exceeded
 *   / parameter problem, quoting as much of the offending packet as fits
 *   in the IPv6 minimum MTU of 1280 bytes (RFC 4443 2.4 c);
 *   `icmpv6ErrorLength(offending)` sizes it.
 * - `mayReplyWithErrorV6(packet, type, code)`: RFC 4443 2.4 e, no error
 *   about an ICMPv6 error, about a packet to a multicast address (except
 *   packet too big and parameter problem code 2), or from an unspecified
 *   or multicast source. A first fragment's ICMPv6 type counts too.
 * - `writeIcmpv6(out, outOffset, type, code, rest, body, src, dst)` writes
 *   any message with its checksum; `finishIcmpv6Checksum` fills in the
 *   checksum of a message already written.
 * Writers return the offset past what they wrote, the ICMPv6 message only.
 */
import type { Ipv6 } from './address.js';
import { finish, pseudoSumV6, sum } from './checksum.js';
import { ParseError, need } from './errors.js';
import { IPV6_HEADER, NextHeader, type Ipv6Packet } from './ipv6.js';

export const ICMPV6_HEADER = 8;
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const REST = 4;
/** RFC 8200 minimum link MTU: errors never make a packet larger. */
const MIN_MTU = 1280;

export const Icmpv6Type = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  Redirect: 137,
} as const;

export const Icmpv6UnreachableCode = {
  NoRoute: 0,
  AdminProhibited: 1,
  BeyondScope: 2,
  AddressUnreachable: 3,
  PortUnreachable: 4,
  SourcePolicy: 5,
  RejectRoute: 6,
} as const;

export class Icmpv6Message {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    readonly length: number,
  ) {}

  /** Validates the message at buf[offset, offset+length) sent from `src` to `dst`. */
  static parse(
    buf: Uint8Array,
    offset: number,
    length: number,
    src: Ipv6,
    dst: Ipv6,
  ): Icmpv6Message {
    if (length < ICMPV6_HEADER) throw new ParseError('icmpv6.truncated');
    need(buf, offset, length, 'icmpv6.truncated');
    const pseudo = pseudoSumV6(src, dst, NextHeader.ICMPv6, length);
    if (finish(sum(buf, offset, length, pseudo)) !== 0) throw new ParseError('icmpv6.bad-checksum');
    return new Icmpv6Message(buf, offset, length);
  }

  /** The upper-layer part of `packet`, which must be ICMPv6. */
  static ofPacket(packet: Ipv6Packet): Icmpv6Message {
    if (packet.upperProtocol !== NextHeader.ICMPv6 || packet.fragment !== undefined) {
      throw new ParseError('icmpv6.not-icmpv6');
    }
    return Icmpv6Message.parse(
      packet.buf,
      packet.upperOffset,
      packet.upperLength,
      packet.src,
      packet.dst,
    );
  }

  get type(): number {
    return this.buf[this.offset + TYPE]!;
  }

  get code(): number {
    return this.buf[this.offset + CODE]!;
  }

  get checksum(): number {
    return this.u16(CHECKSUM);
  }

  /** Types 0-127 are errors (RFC 4443 2.1). */
  get isError(): boolean {
    return this.type < 128;
  }

  get restOfHeader(): number {
    return ((this.u16(REST) << 16) | this.u16(REST + 2)) >>> 0;
  }

  get identifier(): number {
    return this.u16(REST);
  }

  get sequence(): number {
    return this.u16(REST + 2);
  }

  /** The MTU of a packet too big message. */
  get mtu(): number {
    return this.restOfHeader;
  }

  /** Everything after the 8-byte header. */
  get body(): Uint8Array {
    return this.buf.subarray(this.offset + ICMPV6_HEADER, this.offset + this.length);
  }

  get bytes(): Uint8Array {
    return this.buf.subarray(this.offset, this.offset + this.length);
  }

  private u16(at: number): number {
    return (this.buf[this.offset + at]! << 8) | this.buf[this.offset + at + 1]!;
  }
}

/** Computes and stores the checksum of the message at out[offset, offset+length). */
export function finishIcmpv6Checksum(
  out: Uint8Array,
  offset: number,
  length: number,
  src: Ipv6,
  dst: Ipv6,
): void {
  out[offset + CHECKSUM] = 0;
  out[offset + CHECKSUM + 1] = 0;
  const c = finish(sum(out, offset, length, pseudoSumV6(src, dst, NextHeader.ICMPv6, length)));
  out[offset + CHECKSUM] = c >>> 8;
  out[offset + CHECKSUM + 1] = c & 0xff;
}

/** Writes a message: header (type, code, rest), `body`, checksum. */
export function writeIcmpv6(
  out: Uint8Array,
  outOffset: number,
  type: number,
  code: number,
  rest: number,
  body: Uint8Array,
  src: Ipv6,
  dst: Ipv6,
): number {
  const length = ICMPV6_HEADER + body.length;
  need(out, outOffset, length, 'icmpv6.buffer');
  out.set(body, outOffset + ICMPV6_HEADER);
  out[outOffset + TYPE] = type;
  out[outOffset + CODE] = code;
  out[outOffset + REST] = rest >>> 24;
  out[outOffset + REST + 1] = (rest >>> 16) & 0xff;
  out[outOffset + REST + 2] = (rest >>> 8) & 0xff;
  out[outOffset + REST + 3] = rest & 0xff;
  finishIcmpv6Checksum(out, outOffset, length, src, dst);
  return outOffset + length;
}

/** Writes the echo reply to `request`, sent from `src` to `dst`. */
export function writeIcmpv6EchoReply(
  request: Icmpv6Message,
  out: Uint8Array,
  outOffset: number,
  src: Ipv6,
  dst: Ipv6,
): number {
  need(out, outOffset, request.length, 'icmpv6.buffer');
  const length = request.length;
  out.set(request.bytes, outOffset);
  out[outOffset + TYPE] = Icmpv6Type.EchoReply;
  out[outOffset + CODE] = 0;
  finishIcmpv6Checksum(out, outOffset, length, src, dst);
  return outOffset + length;
}

/** The length of the error message about `offending` (the whole invoking packet). */
export function icmpv6ErrorLength(offending: Uint8Array): number {
  return Math.min(ICMPV6_HEADER + offending.length, MIN_MTU - IPV6_HEADER);
}

/**
 * Writes an error about `offending` (the invoking packet's bytes from its
 * IPv6 header on): `rest` is the MTU for packet too big, the pointer for
 * parameter problem, else 0.
 */
export function writeIcmpv6Error(
  out: Uint8Array,
  outOffset: number,
  type: number,
  code: number,
  offending: Uint8Array,
  src: Ipv6,
  dst: Ipv6,
  rest = 0,
): number {
  const quoted = offending.subarray(0, icmpv6ErrorLength(offending) - ICMPV6_HEADER);
  return writeIcmpv6(out, outOffset, type, code, rest, quoted, src, dst);
}

/**
 * RFC 4443 2.4 (e): whether an error of `type`/`code` may be sent about
 * `packet`. A fragment at offset zero whose next header is ICMPv6 starts
 * with the ICMPv6 header, so its type is read as for a whole packet; a
 * later fragment's type cannot be known and does not forbid an error.
 */
export function mayReplyWithErrorV6(packet: Ipv6Packet, type: number, code = 0): boolean {
  const src = packet.src;
  if (src[0] === 0xff || src.every((b) => b === 0)) return false;
  const toMulticast = packet.dst[0] === 0xff;
  const exempt =
    type === Icmpv6Type.PacketTooBig || (type === Icmpv6Type.ParameterProblem && code === 2);
  if (toMulticast && !exempt) return false;
  const readable = packet.fragment === undefined || packet.fragment.offset === 0;
  if (packet.upperProtocol === NextHeader.ICMPv6 && readable) {
    if (packet.upperLength < 1) return false;
    return packet.buf[packet.upperOffset]! >= 128;
  }
  return true;
}
