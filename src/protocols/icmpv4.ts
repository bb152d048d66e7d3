/**
 * ICMP for IPv4 (RFC 792), the messages the gateway answers and sends.
 *
 * Interface:
 * - `Icmpv4Message.parse(buf, offset, length)` validates once (8-byte
 *   header present, checksum over the whole message) and returns a view;
 *   its accessors cannot fail. `length` is the IP payload length.
 * - `writeEchoReply(request, out, outOffset)` writes the reply to an echo
 *   request: the same bytes with type 0 and the checksum adjusted (RFC 1624);
 *   `out` may be the request's own buffer at the same offset.
 * - `mayReplyWithError(packet)` applies RFC 1122 3.2.2: no ICMP error about
 *   an ICMP error, a non-first fragment, or a broadcast/multicast datagram.
 * - `writeIcmpv4Error(out, outOffset, type, code, offending, rest)` writes a
 *   destination unreachable / time exceeded / parameter problem message.
 *   It quotes the offending IP header and the first 8 bytes of its payload,
 *   the RFC 792 minimum; it does not quote up to 576 bytes as RFC 1812
 *   allows (the guest needs nothing more to find the socket).
 *   `icmpv4ErrorLength(offending)` sizes the buffer beforehand.
 *   `writeIcmpv4ErrorQuoting(out, outOffset, type, code, quoted, rest)`
 *   writes the same from bytes the caller kept (the offending packet's
 *   header and first 8 payload bytes), once the packet itself is gone.
 *
 * Writers return the offset just past what they wrote. Only the ICMP message
 * is written; the IP header around it is the caller's (`writeIpv4Header`).
 * Timestamp, redirect and other rarely used types parse (type, code, body)
 * but have no named accessors.
 */
import { sum, finish } from './checksum.js';
import { ParseError, need } from './errors.js';
import { IpProtocol, type Ipv4Packet } from './ipv4.js';

export const ICMPV4_HEADER = 8;
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const REST = 4;
const IDENT = 4;
const SEQUENCE = 6;

/** Bytes of the offending datagram's payload quoted after its header. */
export const ICMPV4_QUOTED_PAYLOAD = 8;

export const Icmpv4Type = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  SourceQuench: 4,
  Redirect: 5,
  EchoRequest: 8,
  TimeExceeded: 11,
  ParameterProblem: 12,
} as const;

/** Codes of destination unreachable (RFC 792, RFC 1122, RFC 1812). */
export const UnreachableCode = {
  Net: 0,
  Host: 1,
  Protocol: 2,
  Port: 3,
  FragmentationNeeded: 4,
  NetProhibited: 9,
  HostProhibited: 10,
  AdminProhibited: 13,
} as const;

/** Codes of time exceeded. */
export const TimeExceededCode = {
  TtlExceeded: 0,
  ReassemblyTimeExceeded: 1,
} as const;

const ERROR_TYPES: ReadonlySet<number> = new Set([3, 4, 5, 11, 12]);

export class Icmpv4Message {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    readonly length: number,
  ) {}

  /** Validates the message at buf[offset, offset+length) and returns a view. */
  static parse(buf: Uint8Array, offset = 0, length = buf.length - offset): Icmpv4Message {
    if (length < ICMPV4_HEADER) throw new ParseError('icmpv4.truncated');
    need(buf, offset, length, 'icmpv4.truncated');
    if (finish(sum(buf, offset, length)) !== 0) throw new ParseError('icmpv4.bad-checksum');
    return new Icmpv4Message(buf, offset, length);
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

  /** The second 32-bit word, whose meaning depends on the type. */
  get restOfHeader(): number {
    return ((this.u16(REST) << 16) | this.u16(REST + 2)) >>> 0;
  }

  get isEchoRequest(): boolean {
    return this.type === Icmpv4Type.EchoRequest && this.code === 0;
  }

  /** Destination unreachable, source quench, redirect, time exceeded, parameter problem. */
  get isError(): boolean {
    return ERROR_TYPES.has(this.type);
  }

  /** Echo identifier (meaningful for echo request and reply). */
  get identifier(): number {
    return this.u16(IDENT);
  }

  /** Echo sequence number (meaningful for echo request and reply). */
  get sequence(): number {
    return this.u16(SEQUENCE);
  }

  /** Everything after the 8-byte header: echo data, or an error's quoted datagram. */
  get body(): Uint8Array {
    return this.buf.subarray(this.offset + ICMPV4_HEADER, this.offset + this.length);
  }

  /** Next-hop MTU of a fragmentation-needed message (RFC 1191). */
  get nextHopMtu(): number {
    return this.u16(REST + 2);
  }

  /** The whole message. */
  get bytes(): Uint8Array {
    return this.buf.subarray(this.offset, this.offset + this.length);
  }

  private u16(at: number): number {
    return (this.buf[this.offset + at]! << 8) | this.buf[this.offset + at + 1]!;
  }
}

/**
 * Writes the echo reply to `request` at out[outOffset]: the request's bytes
 * with type 0, and its checksum updated for the changed word (RFC 1624,
 * equation 3), which gives what a full recomputation would.
 */
export function writeEchoReply(request: Icmpv4Message, out: Uint8Array, outOffset: number): number {
  need(out, outOffset, request.length, 'icmpv4.reply-buffer');
  const oldWord = (request.type << 8) | request.code;
  const newWord = (Icmpv4Type.EchoReply << 8) | request.code;
  const c = adjustChecksum(request.checksum, oldWord, newWord);
  out.set(request.bytes, outOffset);
  out[outOffset + TYPE] = Icmpv4Type.EchoReply;
  out[outOffset + CHECKSUM] = c >>> 8;
  out[outOffset + CHECKSUM + 1] = c & 0xff;
  return outOffset + request.length;
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
function adjustChecksum(checksum: number, oldWord: number, newWord: number): number {
  return finish((~checksum & 0xffff) + (~oldWord & 0xffff) + newWord);
}

/**
 * RFC 1122 3.2.2: whether an ICMP error may be sent about `packet`. Not
 * about an ICMP error, a fragment other than the first, a datagram sent to
 * or from a broadcast or multicast address, or from 0.0.0.0. Directed
 * broadcasts of the guest's subnet are the caller's to exclude.
 */
export function mayReplyWithError(packet: Ipv4Packet): boolean {
  if (packet.fragmentOffset !== 0) return false;
  if (isBroadcastOrMulticast(packet.dst) || isBroadcastOrMulticast(packet.src)) return false;
  if (packet.src === 0) return false;
  if (packet.protocol === IpProtocol.ICMP) {
    if (packet.payloadLength < 1) return false;
    return !ERROR_TYPES.has(packet.buf[packet.payloadOffset]!);
  }
  return true;
}

function isBroadcastOrMulticast(a: number): boolean {
  return a === 0xffffffff || a >>> 28 === 0xe;
}

/** The length of the error message `writeIcmpv4Error` writes about `offending`. */
export function icmpv4ErrorLength(offending: Ipv4Packet): number {
  return (
    ICMPV4_HEADER +
    offending.headerLength +
    Math.min(offending.payloadLength, ICMPV4_QUOTED_PAYLOAD)
  );
}

/**
 * Writes an ICMP error about `offending` at out[outOffset]: type, code,
 * `rest` as the second word (the next-hop MTU for fragmentation needed, the
 * pointer in its top byte for parameter problem, else 0), then the quoted
 * header and 8 bytes of payload. Returns the offset past the message.
 */
export function writeIcmpv4Error(
  out: Uint8Array,
  outOffset: number,
  type: number,
  code: number,
  offending: Ipv4Packet,
  rest = 0,
): number {
  const length = icmpv4ErrorLength(offending);
  const quoted = offending.buf.subarray(
    offending.offset,
    offending.offset + length - ICMPV4_HEADER,
  );
  return writeIcmpv4ErrorQuoting(out, outOffset, type, code, quoted, rest);
}

/**
 * As `writeIcmpv4Error`, quoting bytes the caller kept (a host socket's
 * ECONNREFUSED comes after the datagram that caused it is gone). The
 * message is ICMPV4_HEADER + quoted.length bytes long.
 */
export function writeIcmpv4ErrorQuoting(
  out: Uint8Array,
  outOffset: number,
  type: number,
  code: number,
  quoted: Uint8Array,
  rest = 0,
): number {
  const length = ICMPV4_HEADER + quoted.length;
  need(out, outOffset, length, 'icmpv4.error-buffer');
  out.set(quoted, outOffset + ICMPV4_HEADER);
  out[outOffset + TYPE] = type;
  out[outOffset + CODE] = code;
  out[outOffset + CHECKSUM] = 0;
  out[outOffset + CHECKSUM + 1] = 0;
  out[outOffset + REST] = rest >>> 24;
  out[outOffset + REST + 1] = (rest >>> 16) & 0xff;
  out[outOffset + REST + 2] = (rest >>> 8) & 0xff;
  out[outOffset + REST + 3] = rest & 0xff;
  const c = finish(sum(out, outOffset, length));
  out[outOffset + CHECKSUM] = c >>> 8;
  out[outOffset + CHECKSUM + 1] = c & 0xff;
  return outOffset + length;
}
