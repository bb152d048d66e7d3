/**
 * UDP (RFC 768) over IPv4 and IPv6 (RFC 8200 section 8.1).
 *
 * Interface:
 * - `UdpDatagram.parse(buf, offset, length, ipv6)` checks once: 8-byte
 *   header, a length field of at least 8 and at most the `length` bytes the
 *   IP layer delivered (bytes past it are padding and not part of the
 *   datagram, as Linux trims them), and over IPv6 a non-zero checksum. It
 *   does not verify the checksum: `checksumValid(pseudoSum)` does, given the
 *   pseudo-header partial sum for `datagram.length` (a zero checksum over
 *   IPv4 means "none" and is valid). Callers that trust the device
 *   (virtio-net DATA_VALID or NEEDS_CSUM, where the field holds only a
 *   partial sum) skip that call.
 * - `UdpDatagram.parseV4(buf, offset, length, src, dst)` and `parseV6(...)`
 *   parse and verify, throwing `udp.bad-checksum`.
 * - `writeUdp(buf, offset, srcPort, dstPort, payload, pseudoSum)` writes the
 *   header, copies the payload (skipped when it already sits in place) and
 *   fills in the checksum; `writeUdpV4` / `writeUdpV6` compute the pseudo
 *   header themselves. They return the offset past the datagram.
 *
 * ParseError codes: `udp.truncated`, `udp.bad-length`, `udp.zero-checksum`
 * (IPv6), `udp.bad-checksum`. Not done: IPv6 jumbograms (RFC 2675, length
 * field 0), UDP-Lite, and writing partial checksums for the kernel to
 * finish (NEEDS_CSUM); outgoing checksums are always complete.
 */
import type { Ipv4 } from './address.js';
import { finish, pseudoSumV4, pseudoSumV6, sum } from './checksum.js';
import { ParseError, need } from './errors.js';

export const UDP_HEADER = 8;
const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;

const PROTOCOL_UDP = 17;

export class UdpDatagram {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    /** The UDP length field: header plus payload. */
    readonly length: number,
  ) {}

  /** Validates the header at buf[offset], `length` bytes being available from there. */
  static parse(buf: Uint8Array, offset: number, length: number, ipv6 = false): UdpDatagram {
    if (length < UDP_HEADER) throw new ParseError('udp.truncated');
    need(buf, offset, length, 'udp.truncated');
    const udpLength = (buf[offset + LENGTH]! << 8) | buf[offset + LENGTH + 1]!;
    if (udpLength < UDP_HEADER) throw new ParseError('udp.bad-length');
    if (udpLength > length) throw new ParseError('udp.truncated');
    if (ipv6 && buf[offset + CHECKSUM] === 0 && buf[offset + CHECKSUM + 1] === 0) {
      throw new ParseError('udp.zero-checksum');
    }
    return new UdpDatagram(buf, offset, udpLength);
  }

  /** Parses and verifies the checksum against the IPv4 pseudo header. */
  static parseV4(
    buf: Uint8Array,
    offset: number,
    length: number,
    src: Ipv4,
    dst: Ipv4,
  ): UdpDatagram {
    const d = UdpDatagram.parse(buf, offset, length, false);
    if (!d.checksumValid(pseudoSumV4(src, dst, PROTOCOL_UDP, d.length))) {
      throw new ParseError('udp.bad-checksum');
    }
    return d;
  }

  /** Parses and verifies the checksum against the IPv6 pseudo header. */
  static parseV6(
    buf: Uint8Array,
    offset: number,
    length: number,
    src: Uint8Array,
    dst: Uint8Array,
  ): UdpDatagram {
    const d = UdpDatagram.parse(buf, offset, length, true);
    if (!d.checksumValid(pseudoSumV6(src, dst, PROTOCOL_UDP, d.length))) {
      throw new ParseError('udp.bad-checksum');
    }
    return d;
  }

  get srcPort(): number {
    return this.u16(SRC_PORT);
  }

  get dstPort(): number {
    return this.u16(DST_PORT);
  }

  get checksum(): number {
    return this.u16(CHECKSUM);
  }

  /**
   * Whether the checksum holds, given the pseudo-header partial sum
   * (`pseudoSumV4` / `pseudoSumV6` with l4Length = this.length). A zero
   * checksum (none sent) passes; parse has already refused it over IPv6.
   */
  checksumValid(pseudoSum: number): boolean {
    if (this.checksum === 0) return true;
    return finish(sum(this.buf, this.offset, this.length, pseudoSum)) === 0;
  }

  get payloadOffset(): number {
    return this.offset + UDP_HEADER;
  }

  get payloadLength(): number {
    return this.length - UDP_HEADER;
  }

  get payload(): Uint8Array {
    return this.buf.subarray(this.offset + UDP_HEADER, this.offset + this.length);
  }

  private u16(at: number): number {
    return (this.buf[this.offset + at]! << 8) | this.buf[this.offset + at + 1]!;
  }
}

/**
 * Writes a datagram at buf[offset]: header, payload (not copied when it is
 * already the view buf[offset+8, ...)), checksum. `pseudoSum` is the
 * pseudo-header partial sum for a UDP length of 8 + payload.length. A
 * computed checksum of 0 goes out as 0xffff (RFC 768). Returns the offset
 * past the datagram.
 */
export function writeUdp(
  buf: Uint8Array,
  offset: number,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
  pseudoSum: number,
): number {
  const length = UDP_HEADER + payload.length;
  if (length > 0xffff) throw new ParseError('udp.too-long');
  need(buf, offset, length, 'udp.buffer');
  const inPlace =
    payload.buffer === buf.buffer && payload.byteOffset === buf.byteOffset + offset + UDP_HEADER;
  if (!inPlace) buf.set(payload, offset + UDP_HEADER);
  buf[offset + SRC_PORT] = srcPort >>> 8;
  buf[offset + SRC_PORT + 1] = srcPort & 0xff;
  buf[offset + DST_PORT] = dstPort >>> 8;
  buf[offset + DST_PORT + 1] = dstPort & 0xff;
  buf[offset + LENGTH] = length >>> 8;
  buf[offset + LENGTH + 1] = length & 0xff;
  buf[offset + CHECKSUM] = 0;
  buf[offset + CHECKSUM + 1] = 0;
  const c = finish(sum(buf, offset, length, pseudoSum)) || 0xffff;
  buf[offset + CHECKSUM] = c >>> 8;
  buf[offset + CHECKSUM + 1] = c & 0xff;
  return offset + length;
}

export function writeUdpV4(
  buf: Uint8Array,
  offset: number,
  src: Ipv4,
  dst: Ipv4,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): number {
  const pseudo = pseudoSumV4(src, dst, PROTOCOL_UDP, UDP_HEADER + payload.length);
  return writeUdp(buf, offset, srcPort, dstPort, payload, pseudo);
}

export function writeUdpV6(
  buf: Uint8Array,
  offset: number,
  src: Uint8Array,
  dst: Uint8Array,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): number {
  const pseudo = pseudoSumV6(src, dst, PROTOCOL_UDP, UDP_HEADER + payload.length);
  return writeUdp(buf, offset, srcPort, dstPort, payload, pseudo);
}
