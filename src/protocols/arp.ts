/**
 * ARP (RFC 826) for Ethernet and IPv4, the only pairing the tap carries.
 *
 * Interface:
 * - `ArpPacket.parse(buf, offset)` checks once that the 28 bytes are there,
 *   that hardware type is 1 (Ethernet), protocol type 0x0800 (IPv4), the
 *   address lengths 6 and 4, and the operation a request (1) or reply (2);
 *   anything else is a ParseError (`arp.truncated`, `arp.bad-hardware`,
 *   `arp.bad-protocol`, `arp.bad-lengths`, `arp.bad-operation`). The
 *   accessors that follow cannot fail. Bytes past the 28 (Ethernet padding
 *   to the 60-byte minimum) are ignored.
 * - `writeArp(buf, offset, repr)` writes a request or reply; `writeArpReply`
 *   writes the reply to a request, from the MAC that owns the target
 *   address. Both return the offset past the 28 bytes.
 *
 * Gratuitous ARP parses like any other request (sender IP = target IP);
 * what to do with it is the caller's affair. RARP and InARP are not handled.
 */
import { readIpv4, writeIpv4, type Ipv4, type Mac } from './address.js';
import { ParseError, need } from './errors.js';

export const ARP_LENGTH = 28;
const HTYPE = 0;
const PTYPE = 2;
const HLEN = 4;
const PLEN = 5;
const OPER = 6;
const SHA = 8;
const SPA = 14;
const THA = 18;
const TPA = 24;

const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;

export const ArpOperation = {
  Request: 1,
  Reply: 2,
} as const;

export type ArpOperation = (typeof ArpOperation)[keyof typeof ArpOperation];

export class ArpPacket {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
  ) {}

  /** Validates the packet at buf[offset] and returns a view over it. */
  static parse(buf: Uint8Array, offset = 0): ArpPacket {
    need(buf, offset, ARP_LENGTH, 'arp.truncated');
    const u16 = (at: number) => (buf[offset + at]! << 8) | buf[offset + at + 1]!;
    if (u16(HTYPE) !== HTYPE_ETHERNET) throw new ParseError('arp.bad-hardware');
    if (u16(PTYPE) !== PTYPE_IPV4) throw new ParseError('arp.bad-protocol');
    if (buf[offset + HLEN] !== 6 || buf[offset + PLEN] !== 4) {
      throw new ParseError('arp.bad-lengths');
    }
    const op = u16(OPER);
    if (op !== ArpOperation.Request && op !== ArpOperation.Reply) {
      throw new ParseError('arp.bad-operation');
    }
    return new ArpPacket(buf, offset);
  }

  get operation(): ArpOperation {
    return this.buf[this.offset + OPER + 1] as ArpOperation;
  }

  get senderMac(): Mac {
    return this.buf.subarray(this.offset + SHA, this.offset + SHA + 6);
  }

  get senderIp(): Ipv4 {
    return readIpv4(this.buf, this.offset + SPA);
  }

  get targetMac(): Mac {
    return this.buf.subarray(this.offset + THA, this.offset + THA + 6);
  }

  get targetIp(): Ipv4 {
    return readIpv4(this.buf, this.offset + TPA);
  }
}

export interface ArpRepr {
  operation: ArpOperation;
  senderMac: Mac;
  senderIp: Ipv4;
  /** All zeros in a request (RFC 826 leaves it unspecified; Linux sends zeros). */
  targetMac: Mac;
  targetIp: Ipv4;
}

/** Writes the 28-byte packet at buf[offset]; returns the offset past it. */
export function writeArp(buf: Uint8Array, offset: number, r: ArpRepr): number {
  need(buf, offset, ARP_LENGTH, 'arp.buffer');
  buf[offset + HTYPE] = 0;
  buf[offset + HTYPE + 1] = HTYPE_ETHERNET;
  buf[offset + PTYPE] = PTYPE_IPV4 >> 8;
  buf[offset + PTYPE + 1] = PTYPE_IPV4 & 0xff;
  buf[offset + HLEN] = 6;
  buf[offset + PLEN] = 4;
  buf[offset + OPER] = 0;
  buf[offset + OPER + 1] = r.operation;
  buf.set(r.senderMac.subarray(0, 6), offset + SHA);
  writeIpv4(buf, offset + SPA, r.senderIp);
  buf.set(r.targetMac.subarray(0, 6), offset + THA);
  writeIpv4(buf, offset + TPA, r.targetIp);
  return offset + ARP_LENGTH;
}

/**
 * Writes the reply to `request` at buf[offset]: `ownerMac` owns the
 * requested address, and the reply goes back to the requester. `buf` may
 * hold the request itself at the same offset.
 */
export function writeArpReply(
  buf: Uint8Array,
  offset: number,
  request: ArpPacket,
  ownerMac: Mac,
): number {
  const requesterMac = Uint8Array.from(request.senderMac);
  return writeArp(buf, offset, {
    operation: ArpOperation.Reply,
    senderMac: ownerMac,
    senderIp: request.targetIp,
    targetMac: requesterMac,
    targetIp: request.senderIp,
  });
}
