/**
 * IPv6 (RFC 8200): the header view with its extension-header walk, the
 * header writer, and IPv6 fragment reassembly and fragmentation around
 * fragments.ts.
 *
 * Interface:
 * - `Ipv6Packet.parse(buf, offset)` validates once: version 6, the payload
 *   length against the bytes present (Ethernet padding after it is not
 *   part of the packet), and the extension headers, walked in order:
 *   hop-by-hop (only first), destination options, routing, fragment. It
 *   reports `upperProtocol` and `upperOffset` (where TCP/UDP/ICMPv6/...
 *   begins) and, for a fragment, `fragment` (offset, more, id, next
 *   header). The walk stops at a fragment header that is not atomic (the
 *   headers after it are in the fragmented data); an atomic fragment
 *   (offset 0, M clear, RFC 6946) is walked through as if absent.
 *   Any next-header value that is not one of these four extension headers
 *   is taken as the upper-layer protocol, except the extension headers we
 *   do not process (ESP, AH, mobility, HIP, shim6, experimental 253/254),
 *   which are a ParseError. Options in hop-by-hop and destination options
 *   headers are checked per RFC 8200 4.2: Pad1, PadN, router alert and
 *   unknown options whose action bits say "skip" pass; any other unknown
 *   option is a ParseError (the RFC says discard). A routing header with
 *   segments left is refused: we are no source-routing hop.
 *   ParseError codes: `ipv6.truncated`, `ipv6.bad-version`,
 *   `ipv6.jumbogram`, `ipv6.misplaced-hop-by-hop`, `ipv6.bad-option`,
 *   `ipv6.unknown-option`, `ipv6.routing-header`,
 *   `ipv6.unsupported-extension`.
 * - `writeIpv6Header(buf, offset, repr)` writes the 40-byte fixed header;
 *   returns the offset past it.
 * - `Ipv6Reassembler.add(packet, now)` files a fragment and returns the
 *   whole packet once complete: the offset-zero fragment's unfragmentable
 *   part, its next-header field set to the fragment header's, the payload
 *   length rewritten. Parse the result again to walk it. Drops are
 *   reported as in fragments.ts, with `ipv6.fragment.*` codes; on timeout,
 *   `first.header` + `first.data` is the offset-zero fragment as it arrived
 *   (its buffer from the start, a link-layer header included, fragment
 *   header and all), for the ICMPv6 time exceeded of RFC 8200 4.5.
 * - `fragmentIpv6(packet, mtu, id)` splits a packet into fragments of at
 *   most `mtu` bytes. The unfragmentable part it repeats in each is the
 *   fixed header and a hop-by-hop header if there is one; everything else
 *   (routing headers included) is fragmented, which suits the packets the
 *   stack itself sends.
 *
 * Not done: jumbograms (RFC 2675), processing routing headers, ESP/AH.
 */
import type { Ipv6 } from './address.js';
import { ParseError, need } from './errors.js';
import { Reassembler, type FragmentDrop, type ReassemblyOptions } from './fragments.js';

export const IPV6_HEADER = 40;
const VERSION_TC_FLOW = 0;
const PAYLOAD_LENGTH = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC = 8;
const DST = 24;
const FRAGMENT_HEADER = 8;
const IPV6_MAX_PAYLOAD = 0xffff;

export const NextHeader = {
  HopByHop: 0,
  TCP: 6,
  UDP: 17,
  Routing: 43,
  Fragment: 44,
  ESP: 50,
  AH: 51,
  ICMPv6: 58,
  NoNextHeader: 59,
  DestinationOptions: 60,
} as const;

/** Extension headers we recognise but do not process. */
const UNSUPPORTED: ReadonlySet<number> = new Set([50, 51, 135, 139, 140, 253, 254]);

export interface Ipv6FragmentInfo {
  /** Offset of this fragment's data in the original fragmentable part, in bytes. */
  offset: number;
  more: boolean;
  identification: number;
  /** The fragment header's next-header value. */
  nextHeader: number;
  /** Offset, from the packet start, of the fragment header. */
  headerOffset: number;
  /** Offset, from the packet start, of the next-header field that names the fragment header. */
  nextHeaderField: number;
}

export class Ipv6Packet {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    readonly payloadLength: number,
    /** The upper-layer protocol, or the fragment's next header for a non-atomic fragment. */
    readonly upperProtocol: number,
    /** Absolute offset in `buf` where the upper layer (or the fragment data) begins. */
    readonly upperOffset: number,
    readonly fragment: Ipv6FragmentInfo | undefined,
  ) {}

  /** Validates the packet at buf[offset] and returns a view over it. */
  static parse(buf: Uint8Array, offset = 0): Ipv6Packet {
    need(buf, offset, IPV6_HEADER, 'ipv6.truncated');
    if (buf[offset + VERSION_TC_FLOW]! >> 4 !== 6) throw new ParseError('ipv6.bad-version');
    const payloadLength = (buf[offset + PAYLOAD_LENGTH]! << 8) | buf[offset + PAYLOAD_LENGTH + 1]!;
    if (payloadLength === 0 && buf[offset + NEXT_HEADER] === NextHeader.HopByHop) {
      throw new ParseError('ipv6.jumbogram');
    }
    need(buf, offset, IPV6_HEADER + payloadLength, 'ipv6.truncated');
    const walk = walkExtensions(buf, offset, offset + IPV6_HEADER + payloadLength);
    return new Ipv6Packet(buf, offset, payloadLength, walk.protocol, walk.at, walk.fragment);
  }

  get trafficClass(): number {
    return ((this.u16(VERSION_TC_FLOW) >> 4) & 0xff) >>> 0;
  }

  get flowLabel(): number {
    return ((this.buf[this.offset + 1]! & 0x0f) << 16) | this.u16(2);
  }

  /** The first next-header value, in the fixed header. */
  get nextHeader(): number {
    return this.buf[this.offset + NEXT_HEADER]!;
  }

  get hopLimit(): number {
    return this.buf[this.offset + HOP_LIMIT]!;
  }

  get src(): Ipv6 {
    return this.buf.subarray(this.offset + SRC, this.offset + SRC + 16);
  }

  get dst(): Ipv6 {
    return this.buf.subarray(this.offset + DST, this.offset + DST + 16);
  }

  /** Fixed header plus payload. */
  get totalLength(): number {
    return IPV6_HEADER + this.payloadLength;
  }

  /** The upper-layer bytes (or the fragment data). */
  get upperLength(): number {
    return this.offset + this.totalLength - this.upperOffset;
  }

  get upper(): Uint8Array {
    return this.buf.subarray(this.upperOffset, this.offset + this.totalLength);
  }

  /** The whole packet. */
  get bytes(): Uint8Array {
    return this.buf.subarray(this.offset, this.offset + this.totalLength);
  }

  private u16(at: number): number {
    return (this.buf[this.offset + at]! << 8) | this.buf[this.offset + at + 1]!;
  }
}

interface Walk {
  protocol: number;
  at: number;
  fragment: Ipv6FragmentInfo | undefined;
}

function walkExtensions(buf: Uint8Array, start: number, end: number): Walk {
  let nh = buf[start + NEXT_HEADER]!;
  let field = start + NEXT_HEADER;
  let at = start + IPV6_HEADER;
  for (let first = true; ; first = false) {
    if (UNSUPPORTED.has(nh)) throw new ParseError('ipv6.unsupported-extension');
    if (nh === NextHeader.Fragment) {
      if (at + FRAGMENT_HEADER > end) throw new ParseError('ipv6.truncated');
      const word = (buf[at + 2]! << 8) | buf[at + 3]!;
      const fragment: Ipv6FragmentInfo = {
        offset: word & 0xfff8,
        more: (word & 1) !== 0,
        identification:
          ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0,
        nextHeader: buf[at]!,
        headerOffset: at - start,
        nextHeaderField: field - start,
      };
      if (fragment.offset !== 0 || fragment.more) {
        return { protocol: fragment.nextHeader, at: at + FRAGMENT_HEADER, fragment };
      }
      field = at;
      nh = buf[at]!;
      at += FRAGMENT_HEADER;
      continue;
    }
    const isOptions = nh === NextHeader.HopByHop || nh === NextHeader.DestinationOptions;
    if (nh === NextHeader.HopByHop && !first) throw new ParseError('ipv6.misplaced-hop-by-hop');
    if (!isOptions && nh !== NextHeader.Routing) return { protocol: nh, at, fragment: undefined };
    if (at + 2 > end) throw new ParseError('ipv6.truncated');
    const length = (buf[at + 1]! + 1) * 8;
    if (at + length > end) throw new ParseError('ipv6.truncated');
    if (isOptions) checkOptions(buf, at + 2, at + length);
    else if (buf[at + 3] !== 0) throw new ParseError('ipv6.routing-header');
    field = at;
    nh = buf[at]!;
    at += length;
  }
}

/** RFC 8200 4.2: TLV options; unknown ones pass only with action bits 00. */
function checkOptions(buf: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to;) {
    const type = buf[i]!;
    if (type === 0) {
      i += 1;
      continue;
    }
    if (i + 2 > to) throw new ParseError('ipv6.bad-option');
    const len = buf[i + 1]!;
    if (i + 2 + len > to) throw new ParseError('ipv6.bad-option');
    const known = type === 1 || type === 5;
    if (!known && type >> 6 !== 0) throw new ParseError('ipv6.unknown-option');
    i += 2 + len;
  }
}

export interface Ipv6Repr {
  src: Ipv6;
  dst: Ipv6;
  nextHeader: number;
  payloadLength: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** Writes the 40-byte fixed header at buf[offset]; returns the offset past it. */
export function writeIpv6Header(buf: Uint8Array, offset: number, r: Ipv6Repr): number {
  need(buf, offset, IPV6_HEADER, 'ipv6.buffer');
  const tc = r.trafficClass ?? 0;
  const flow = r.flowLabel ?? 0;
  buf[offset] = 0x60 | (tc >> 4);
  buf[offset + 1] = ((tc & 0x0f) << 4) | ((flow >> 16) & 0x0f);
  buf[offset + 2] = (flow >> 8) & 0xff;
  buf[offset + 3] = flow & 0xff;
  buf[offset + PAYLOAD_LENGTH] = r.payloadLength >>> 8;
  buf[offset + PAYLOAD_LENGTH + 1] = r.payloadLength & 0xff;
  buf[offset + NEXT_HEADER] = r.nextHeader;
  buf[offset + HOP_LIMIT] = r.hopLimit ?? 64;
  buf.set(r.src.subarray(0, 16), offset + SRC);
  buf.set(r.dst.subarray(0, 16), offset + DST);
  return offset + IPV6_HEADER;
}

export interface Ipv6ReassemblyResult {
  /** The whole packet, once complete. */
  packet?: Uint8Array;
  /** How many fragments `packet` was made of. */
  fragments?: number;
  drops: readonly FragmentDrop[];
}

/** IPv6 reassembly over parsed packets (RFC 8200 4.5); see the module comment. */
export class Ipv6Reassembler {
  readonly inner: Reassembler;

  constructor(options: ReassemblyOptions = {}) {
    this.inner = new Reassembler('ipv6', options);
  }

  /** Files a fragment (`packet.fragment` is set). */
  add(packet: Ipv6Packet, now: number): Ipv6ReassemblyResult {
    const f = packet.fragment;
    if (f === undefined) return { packet: Uint8Array.from(packet.bytes), fragments: 1, drops: [] };
    const key = `${hex(packet.src)}>${hex(packet.dst)}#${f.identification}`;
    let header = packet.bytes.subarray(0, f.headerOffset);
    if (f.offset === 0) {
      header = Uint8Array.from(header);
      header[f.nextHeaderField] = f.nextHeader;
    }
    const limit = IPV6_MAX_PAYLOAD - (f.headerOffset - IPV6_HEADER);
    const original = f.offset === 0 ? packet.buf.subarray(0, packet.upperOffset) : undefined;
    const r = this.inner.add(
      key,
      { offset: f.offset, more: f.more, data: packet.upper, header, limit, original },
      now,
    );
    if (r.datagram === undefined) return { drops: r.drops };
    const { header: head, payload, fragments } = r.datagram;
    const out = new Uint8Array(head.length + payload.length);
    out.set(head);
    out.set(payload, head.length);
    const length = out.length - IPV6_HEADER;
    out[PAYLOAD_LENGTH] = length >>> 8;
    out[PAYLOAD_LENGTH + 1] = length & 0xff;
    return { packet: out, fragments, drops: r.drops };
  }

  expire(now: number): FragmentDrop[] {
    return this.inner.expire(now);
  }

  nextDeadline(): number | undefined {
    return this.inner.nextDeadline();
  }
}

function hex(a: Uint8Array): string {
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Splits `packet` into fragments of at most `mtu` bytes with identification
 * `id`, as views into one new buffer (the packet itself when it fits).
 * Throws ParseError `ipv6.fragment.mtu-too-small` when the MTU leaves no
 * room for 8 bytes of data, `ipv6.fragment.already-fragmented` for a
 * fragment.
 */
export function fragmentIpv6(packet: Ipv6Packet, mtu: number, id: number): Uint8Array[] {
  if (packet.totalLength <= mtu) return [packet.bytes];
  if (packet.fragment !== undefined) throw new ParseError('ipv6.fragment.already-fragmented');
  const bytes = packet.bytes;
  let unfragmentable = IPV6_HEADER;
  let field = NEXT_HEADER;
  if (packet.nextHeader === NextHeader.HopByHop) {
    field = IPV6_HEADER;
    unfragmentable += (bytes[IPV6_HEADER + 1]! + 1) * 8;
  }
  const step = Math.floor((mtu - unfragmentable - FRAGMENT_HEADER) / 8) * 8;
  if (step < 8) throw new ParseError('ipv6.fragment.mtu-too-small');
  const data = bytes.subarray(unfragmentable);
  const count = Math.ceil(data.length / step);
  const out = new Uint8Array(count * (unfragmentable + FRAGMENT_HEADER) + data.length);
  const fragments: Uint8Array[] = [];
  let at = 0;
  for (let from = 0; from < data.length; from += step) {
    const chunk = data.subarray(from, from + step);
    const frag = out.subarray(at, at + unfragmentable + FRAGMENT_HEADER + chunk.length);
    frag.set(bytes.subarray(0, unfragmentable));
    frag[field] = NextHeader.Fragment;
    const length = frag.length - IPV6_HEADER;
    frag[PAYLOAD_LENGTH] = length >>> 8;
    frag[PAYLOAD_LENGTH + 1] = length & 0xff;
    const h = unfragmentable;
    const more = from + step < data.length ? 1 : 0;
    frag.set([bytes[field]!, 0, from >>> 8, (from & 0xf8) | more], h);
    frag.set([id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff], h + 4);
    frag.set(chunk, h + FRAGMENT_HEADER);
    fragments.push(frag);
    at += frag.length;
  }
  return fragments;
}
