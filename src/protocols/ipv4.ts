/**
 * IPv4 (RFC 791). `Ipv4Packet.parse` validates once (version, header
 * length, total length against the bytes present, header checksum) and the
 * accessors that follow cannot fail. Bytes past the total length (Ethernet
 * padding) are not part of the packet. Options are kept as bytes and not
 * interpreted; fragments are recognised here and reassembled elsewhere.
 */
import { readIpv4, writeIpv4, type Ipv4 } from './address.js';
import { checksum, sum, finish } from './checksum.js';
import { ParseError, need } from './errors.js';

export const IPV4_MIN_HEADER = 20;
const VERSION_IHL = 0;
const TOS = 1;
const TOTAL_LENGTH = 2;
const IDENT = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAG_MASK = 0x1fff;

export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
} as const;

export class Ipv4Packet {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    readonly headerLength: number,
    readonly totalLength: number,
  ) {}

  /** Validates the header at buf[offset] and returns a view over the packet. */
  static parse(buf: Uint8Array, offset: number): Ipv4Packet {
    need(buf, offset, IPV4_MIN_HEADER, 'ipv4.truncated');
    const vi = buf[offset + VERSION_IHL]!;
    if (vi >> 4 !== 4) throw new ParseError('ipv4.bad-version');
    const headerLength = (vi & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER) throw new ParseError('ipv4.bad-header-length');
    const totalLength = (buf[offset + TOTAL_LENGTH]! << 8) | buf[offset + TOTAL_LENGTH + 1]!;
    if (totalLength < headerLength) throw new ParseError('ipv4.bad-total-length');
    need(buf, offset, totalLength, 'ipv4.truncated');
    if (checksum(buf, offset, headerLength) !== 0) throw new ParseError('ipv4.bad-checksum');
    return new Ipv4Packet(buf, offset, headerLength, totalLength);
  }

  get tos(): number {
    return this.buf[this.offset + TOS]!;
  }

  get identification(): number {
    return (this.buf[this.offset + IDENT]! << 8) | this.buf[this.offset + IDENT + 1]!;
  }

  private get flagsFrag(): number {
    return (this.buf[this.offset + FLAGS_FRAG]! << 8) | this.buf[this.offset + FLAGS_FRAG + 1]!;
  }

  get dontFragment(): boolean {
    return (this.flagsFrag & FLAG_DF) !== 0;
  }

  get moreFragments(): boolean {
    return (this.flagsFrag & FLAG_MF) !== 0;
  }

  /** Fragment offset in bytes. */
  get fragmentOffset(): number {
    return (this.flagsFrag & FRAG_MASK) * 8;
  }

  get isFragment(): boolean {
    return (this.flagsFrag & (FLAG_MF | FRAG_MASK)) !== 0;
  }

  get ttl(): number {
    return this.buf[this.offset + TTL]!;
  }

  get protocol(): number {
    return this.buf[this.offset + PROTOCOL]!;
  }

  get src(): Ipv4 {
    return readIpv4(this.buf, this.offset + SRC);
  }

  get dst(): Ipv4 {
    return readIpv4(this.buf, this.offset + DST);
  }

  get options(): Uint8Array {
    return this.buf.subarray(this.offset + IPV4_MIN_HEADER, this.offset + this.headerLength);
  }

  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }

  get payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.totalLength);
  }

  /** The whole header, options included (what ICMP errors quote). */
  get header(): Uint8Array {
    return this.buf.subarray(this.offset, this.offset + this.headerLength);
  }
}

/** What an outgoing header needs; options are never emitted. */
export interface Ipv4Repr {
  src: Ipv4;
  dst: Ipv4;
  protocol: number;
  payloadLength: number;
  ttl?: number;
  identification?: number;
  dontFragment?: boolean;
  tos?: number;
}

/** Writes a 20-byte header with its checksum; returns the payload offset. */
export function writeIpv4Header(buf: Uint8Array, offset: number, r: Ipv4Repr): number {
  const total = IPV4_MIN_HEADER + r.payloadLength;
  buf[offset + VERSION_IHL] = 0x45;
  buf[offset + TOS] = r.tos ?? 0;
  buf[offset + TOTAL_LENGTH] = total >>> 8;
  buf[offset + TOTAL_LENGTH + 1] = total & 0xff;
  const id = r.identification ?? 0;
  buf[offset + IDENT] = id >>> 8;
  buf[offset + IDENT + 1] = id & 0xff;
  buf[offset + FLAGS_FRAG] = r.dontFragment ? 0x40 : 0;
  buf[offset + FLAGS_FRAG + 1] = 0;
  buf[offset + TTL] = r.ttl ?? 64;
  buf[offset + PROTOCOL] = r.protocol;
  buf[offset + CHECKSUM] = 0;
  buf[offset + CHECKSUM + 1] = 0;
  writeIpv4(buf, offset + SRC, r.src);
  writeIpv4(buf, offset + DST, r.dst);
  const c = finish(sum(buf, offset, IPV4_MIN_HEADER));
  buf[offset + CHECKSUM] = c >>> 8;
  buf[offset + CHECKSUM + 1] = c & 0xff;
  return offset + IPV4_MIN_HEADER;
}
