/**
 * Fragment reassembly for IPv4 (RFC 791, RFC 815) and IPv6 (RFC 8200
 * section 4.5), and fragmentation of outgoing IPv4 datagrams.
 *
 * Interface:
 * - `new Reassembler('ipv4' | 'ipv6', { maxBytes, maxDatagrams, timeoutMs })`
 *   holds partial datagrams. `add(key, fragment, now)` files one fragment
 *   and returns `{ datagram?, drops }`: `datagram` (the offset-zero
 *   fragment's header as given, and the reassembled payload) appears exactly
 *   when the last hole is filled; `drops` reports everything thrown away,
 *   each with a stable `code` (`ipv4.fragment.timeout`, ...) for counters.
 *   `expire(now)` drops what has timed out (`add` does it too);
 *   `nextDeadline()` says when to call it next.
 * - `Ipv4Reassembler` wraps it for `Ipv4Packet`s: `add(packet, now)` returns
 *   the whole datagram as a new IPv4 packet (first fragment's header and
 *   options, MF and offset cleared, total length and checksum rewritten).
 *   On timeout, `first.header` is the offset-zero fragment's buffer up to
 *   its payload (a link-layer header before the IP header included), so
 *   `first.header` + `first.data` is that fragment as it arrived.
 *   The IPv6 wrapper lives in ipv6.ts next to the header walk it needs.
 * - `fragmentIpv4(packet, mtu)` splits a datagram into fragments of at most
 *   `mtu` bytes (options without the copy flag go in the first only).
 *
 * Theory of operation. A datagram under reassembly is a list of fragments
 * sorted by offset. Fragments never overlap in it: an exact repeat (same
 * offset and length) is dropped as `duplicate` and the first copy kept;
 * any other overlap discards the whole datagram (`overlap`). RFC 5722
 * demands that for IPv6; for IPv4 we choose the same policy, as Linux does
 * since 4.19, so that no overlap can smuggle different bytes past a check.
 * With no overlaps and all fragments inside [0, total), the datagram is
 * complete when the bytes received equal the total, which the fragment
 * without "more fragments" fixes; a second, different end or data past it
 * discards the datagram (`inconsistent`). A non-last fragment whose length
 * is not a positive multiple of 8 is dropped (`bad-length`), and so is one
 * that would take the datagram past 65535 bytes (`oversize`, RFC 791 and
 * RFC 8200), the datagram being left to time out.
 *
 * Memory is bounded twice: by `maxDatagrams` in reassembly at once and by
 * `maxBytes`, charging each fragment its data, the first fragment's header
 * and FRAGMENT_OVERHEAD bytes of bookkeeping (so that a flood of 8-byte
 * fragments is bounded too). When either would be exceeded, the oldest
 * datagrams are dropped (`evicted`) until the new fragment fits. Each
 * datagram lives `timeoutMs` from its first fragment (30 s for IPv4 as
 * Linux's ipfrag_time, 60 s for IPv6 per RFC 8200), then is dropped
 * (`timeout`); that drop carries the offset-zero fragment as it arrived, if
 * it came, for an ICMP time exceeded (code 1) message. That fragment's
 * bytes are held anyway while the datagram is pending (its data as a piece,
 * its header, and the caller's `original` prefix if given, all charged
 * against `maxBytes`); nothing of it outlives the datagram.
 *
 * Keys are the caller's: (src, dst, protocol, identification) for IPv4; for
 * IPv6 (src, dst, identification) without the next header, because RFC 8200
 * lets the fragments' next-header values differ and uses offset zero's.
 * Not done: remembering discarded datagrams (fragments arriving after an
 * overlap start a new datagram that will time out, as in Linux).
 */
import { checksum } from './checksum.js';
import { ParseError } from './errors.js';
import { Ipv4Packet } from './ipv4.js';

/** Bookkeeping bytes charged per fragment held. */
export const FRAGMENT_OVERHEAD = 64;

export type FragmentDropReason =
  | 'timeout'
  | 'evicted'
  | 'overlap'
  | 'duplicate'
  | 'inconsistent'
  | 'oversize'
  | 'bad-length'
  | 'too-large';

export interface FragmentDrop {
  reason: FragmentDropReason;
  /** `${family}.fragment.${reason}`, for counters. */
  code: string;
  /** Fragments thrown away, the one just offered included. */
  fragments: number;
  /** Payload bytes thrown away. */
  bytes: number;
  /**
   * On timeout: the offset-zero fragment, if it came, as `header` (its
   * `original` bytes if the caller gave them, else its header) and `data`.
   */
  first?: { header: Uint8Array; data: Uint8Array };
}

export interface Fragment {
  /** Offset of `data` in the original payload, in bytes. */
  offset: number;
  /** The "more fragments" flag. */
  more: boolean;
  /** The fragment's data; copied, so the caller may reuse its buffer. */
  data: Uint8Array;
  /** This fragment's header; kept (copied) only for the offset-zero one. */
  header: Uint8Array;
  /** The largest end (offset + length) the reassembled payload may have. */
  limit: number;
  /**
   * For the offset-zero fragment: the bytes before `data` as they arrived
   * (link-layer header on), handed back on timeout to quote in an ICMP
   * error. Copied and charged; optional, `header` stands in without it.
   */
  original?: Uint8Array;
}

export interface Reassembled {
  header: Uint8Array;
  payload: Uint8Array;
  /** How many fragments it was made of. */
  fragments: number;
}

export interface ReassemblyResult {
  datagram?: Reassembled;
  drops: readonly FragmentDrop[];
}

export interface ReassemblyOptions {
  /** Bytes held across all datagrams (default 4 MiB). */
  maxBytes?: number;
  /** Datagrams in reassembly at once (default 256). */
  maxDatagrams?: number;
  /** Lifetime of a datagram from its first fragment (default 30 s IPv4, 60 s IPv6). */
  timeoutMs?: number;
}

interface Piece {
  offset: number;
  end: number;
  data: Uint8Array;
}

interface Partial {
  deadline: number;
  pieces: Piece[];
  received: number;
  charged: number;
  maxEnd: number;
  total: number | undefined;
  header: Uint8Array | undefined;
  /** The offset-zero fragment's `original` bytes, if the caller gave them. */
  original: Uint8Array | undefined;
  /** The offset-zero fragment's limit: its header decides the datagram's size. */
  limit: number;
}

function newPartial(deadline: number): Partial {
  const p = { deadline, pieces: [], received: 0, charged: 0, maxEnd: 0 };
  return { ...p, total: undefined, header: undefined, original: undefined, limit: Infinity };
}

const NO_DROPS: readonly FragmentDrop[] = Object.freeze([]);

export class Reassembler {
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  readonly timeoutMs: number;
  private readonly partials = new Map<string, Partial>();
  private held = 0;

  constructor(
    readonly family: 'ipv4' | 'ipv6',
    options: ReassemblyOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    this.maxDatagrams = Math.max(1, options.maxDatagrams ?? 256);
    this.timeoutMs = options.timeoutMs ?? (family === 'ipv4' ? 30_000 : 60_000);
  }

  /** Bytes charged for everything held (never more than maxBytes). */
  get bytesHeld(): number {
    return this.held;
  }

  get datagramsHeld(): number {
    return this.partials.size;
  }

  /** When the oldest datagram times out, if any is held. */
  nextDeadline(): number | undefined {
    for (const p of this.partials.values()) return p.deadline;
    return undefined;
  }

  /** Drops every datagram whose deadline is at or before `now`. */
  expire(now: number): FragmentDrop[] {
    const drops: FragmentDrop[] = [];
    for (const [key, p] of this.partials) {
      if (p.deadline > now) break;
      const drop = this.discard(key, p, 'timeout', 0, 0);
      const first = p.pieces[0];
      if (p.header !== undefined && first !== undefined && first.offset === 0) {
        drop.first = { header: p.original ?? p.header, data: first.data };
      }
      drops.push(drop);
    }
    return drops;
  }

  /** Files one fragment of the datagram `key`. */
  add(key: string, f: Fragment, now: number): ReassemblyResult {
    const drops = this.partials.size > 0 ? this.expire(now) : [];
    const length = f.data.length;
    const end = f.offset + length;
    const firstBytes = f.offset === 0 ? f.header.length + (f.original?.length ?? 0) : 0;
    const charge = length + FRAGMENT_OVERHEAD + firstBytes;
    let reason: FragmentDropReason | undefined;
    if (end > f.limit) reason = 'oversize';
    else if (f.more && (length === 0 || length % 8 !== 0)) reason = 'bad-length';
    else if (charge > this.maxBytes) reason = 'too-large';
    if (reason !== undefined) return this.result(drops, this.drop(reason, 1, length));

    let p = this.partials.get(key);
    if (p === undefined) {
      this.makeRoom(0, 1, drops);
      p = newPartial(now + this.timeoutMs);
      this.partials.set(key, p);
    }

    const conflict = this.conflict(p, f.offset, end, f.more);
    if (conflict === 'duplicate') return this.result(drops, this.drop('duplicate', 1, length));
    if (conflict !== undefined) {
      drops.push(this.discard(key, p, conflict, 1, length));
      return { drops };
    }

    if (!this.makeRoom(charge, 0, drops, p)) {
      drops.push(this.discard(key, p, 'evicted', 1, length));
      return { drops };
    }
    this.insert(p, f, end, charge);
    if (p.total === undefined || p.received !== p.total) return this.result(drops);

    if (p.total > p.limit) {
      drops.push(this.discard(key, p, 'oversize', 0, 0));
      return { drops };
    }
    this.partials.delete(key);
    this.held -= p.charged;
    const datagram = { header: p.header!, payload: assemble(p), fragments: p.pieces.length };
    return { datagram, drops };
  }

  /** Why the fragment [offset, end) cannot join `p`, if it cannot. */
  private conflict(
    p: Partial,
    offset: number,
    end: number,
    more: boolean,
  ): 'inconsistent' | 'duplicate' | 'overlap' | undefined {
    if (!more && ((p.total !== undefined && p.total !== end) || p.maxEnd > end)) {
      return 'inconsistent';
    }
    if (more && p.total !== undefined && end > p.total) return 'inconsistent';
    const i = indexAfter(p.pieces, offset);
    const prev = p.pieces[i - 1];
    if (prev !== undefined && prev.offset === offset && prev.end === end) return 'duplicate';
    if (prev !== undefined && prev.end > offset) return 'overlap';
    const next = p.pieces[i];
    if (next !== undefined && next.offset < end) return 'overlap';
    return undefined;
  }

  private insert(p: Partial, f: Fragment, end: number, charge: number): void {
    const piece = { offset: f.offset, end, data: Uint8Array.from(f.data) };
    p.pieces.splice(indexAfter(p.pieces, f.offset), 0, piece);
    if (f.offset === 0) {
      p.header = Uint8Array.from(f.header);
      p.original = f.original === undefined ? undefined : Uint8Array.from(f.original);
      p.limit = f.limit;
    }
    if (!f.more) p.total = end;
    p.maxEnd = Math.max(p.maxEnd, end);
    p.received += f.data.length;
    p.charged += charge;
    this.held += charge;
  }

  /**
   * Evicts the oldest datagrams other than `keep` until `bytes` more and
   * `datagrams` more fit. False when they cannot fit even then.
   */
  private makeRoom(bytes: number, datagrams: number, drops: FragmentDrop[], keep?: Partial) {
    for (const [key, p] of this.partials) {
      const fits =
        this.held + bytes <= this.maxBytes && this.partials.size + datagrams <= this.maxDatagrams;
      if (fits) return true;
      if (p !== keep) drops.push(this.discard(key, p, 'evicted', 0, 0));
    }
    return (
      this.held + bytes <= this.maxBytes && this.partials.size + datagrams <= this.maxDatagrams
    );
  }

  /** Forgets datagram `key`, plus `fragments`/`bytes` offered with it. */
  private discard(
    key: string,
    p: Partial,
    reason: FragmentDropReason,
    fragments: number,
    bytes: number,
  ): FragmentDrop {
    this.partials.delete(key);
    this.held -= p.charged;
    return this.drop(reason, p.pieces.length + fragments, p.received + bytes);
  }

  private drop(reason: FragmentDropReason, fragments: number, bytes: number): FragmentDrop {
    return { reason, code: `${this.family}.fragment.${reason}`, fragments, bytes };
  }

  private result(drops: FragmentDrop[], extra?: FragmentDrop): ReassemblyResult {
    if (extra !== undefined) drops.push(extra);
    return { drops: drops.length === 0 ? NO_DROPS : drops };
  }
}

/** The index of the first piece whose offset is greater than `offset`. */
function indexAfter(pieces: Piece[], offset: number): number {
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pieces[mid]!.offset <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function assemble(p: Partial): Uint8Array {
  const out = new Uint8Array(p.total!);
  for (const piece of p.pieces) out.set(piece.data, piece.offset);
  return out;
}

const IPV4_MAX = 0xffff;
const TOTAL_LENGTH = 2;
const FLAGS_FRAG = 6;
const CHECKSUM = 10;
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;

export interface Ipv4ReassemblyResult {
  /** The whole datagram as one IPv4 packet, once complete. */
  packet?: Uint8Array;
  /** How many fragments `packet` was made of. */
  fragments?: number;
  drops: readonly FragmentDrop[];
}

/** IPv4 reassembly over parsed packets; see the module comment. */
export class Ipv4Reassembler {
  readonly inner: Reassembler;

  constructor(options: ReassemblyOptions = {}) {
    this.inner = new Reassembler('ipv4', options);
  }

  /**
   * Files a fragment (`packet.isFragment` is true). Returns the complete
   * datagram, rebuilt as one IPv4 packet, once its last hole is filled.
   */
  add(packet: Ipv4Packet, now: number): Ipv4ReassemblyResult {
    const key = `${packet.src}>${packet.dst}/${packet.protocol}#${packet.identification}`;
    const r = this.inner.add(
      key,
      {
        offset: packet.fragmentOffset,
        more: packet.moreFragments,
        data: packet.payload,
        header: packet.header,
        limit: IPV4_MAX - packet.headerLength,
        original:
          packet.fragmentOffset === 0 ? packet.buf.subarray(0, packet.payloadOffset) : undefined,
      },
      now,
    );
    if (r.datagram === undefined) return { drops: r.drops };
    const { header, payload, fragments } = r.datagram;
    return { packet: rebuildIpv4(header, payload), fragments, drops: r.drops };
  }

  expire(now: number): FragmentDrop[] {
    return this.inner.expire(now);
  }

  nextDeadline(): number | undefined {
    return this.inner.nextDeadline();
  }
}

function rebuildIpv4(header: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  const total = out.length;
  out[TOTAL_LENGTH] = total >>> 8;
  out[TOTAL_LENGTH + 1] = total & 0xff;
  out[FLAGS_FRAG] &= FLAG_DF >> 8;
  out[FLAGS_FRAG + 1] = 0;
  writeHeaderChecksum(out, header.length);
  return out;
}

function writeHeaderChecksum(buf: Uint8Array, headerLength: number): void {
  buf[CHECKSUM] = 0;
  buf[CHECKSUM + 1] = 0;
  const c = checksum(buf, 0, headerLength);
  buf[CHECKSUM] = c >>> 8;
  buf[CHECKSUM + 1] = c & 0xff;
}

/**
 * Splits `packet` into fragments of at most `mtu` bytes each, returned as
 * views into one new buffer (or the packet itself when it fits). A packet
 * that is itself a fragment is split further, its offsets and final MF
 * kept. Throws ParseError `ipv4.fragment.dont-fragment` if DF is set and
 * the packet does not fit, `ipv4.fragment.mtu-too-small` if the MTU leaves
 * no room for 8 bytes of data after a header.
 */
export function fragmentIpv4(packet: Ipv4Packet, mtu: number): Uint8Array[] {
  const whole = packet.buf.subarray(packet.offset, packet.offset + packet.totalLength);
  if (packet.totalLength <= mtu) return [whole];
  if (packet.dontFragment) throw new ParseError('ipv4.fragment.dont-fragment');

  const firstHeader = packet.header;
  const laterHeader = copiedOptionsHeader(firstHeader);
  const firstStep = Math.floor((mtu - firstHeader.length) / 8) * 8;
  const laterStep = Math.floor((mtu - laterHeader.length) / 8) * 8;
  if (firstStep < 8 || laterStep < 8) throw new ParseError('ipv4.fragment.mtu-too-small');

  const payload = packet.payload;
  const count = 1 + Math.ceil(Math.max(0, payload.length - firstStep) / laterStep);
  const size = firstHeader.length + laterHeader.length * (count - 1) + payload.length;
  const out = new Uint8Array(size);
  const fragments: Uint8Array[] = [];
  let at = 0;
  for (let from = 0; from < payload.length;) {
    const header = from === 0 ? firstHeader : laterHeader;
    const step = Math.min(from === 0 ? firstStep : laterStep, payload.length - from);
    const last = from + step === payload.length;
    const frag = out.subarray(at, at + header.length + step);
    frag.set(header);
    frag.set(payload.subarray(from, from + step), header.length);
    writeFragmentFields(
      frag,
      header.length,
      packet.fragmentOffset + from,
      last ? packet.moreFragments : true,
    );
    fragments.push(frag);
    at += frag.length;
    from += step;
  }
  return fragments;
}

function writeFragmentFields(
  frag: Uint8Array,
  headerLength: number,
  offset: number,
  more: boolean,
) {
  frag[TOTAL_LENGTH] = frag.length >>> 8;
  frag[TOTAL_LENGTH + 1] = frag.length & 0xff;
  const field = (more ? FLAG_MF : 0) | (offset / 8);
  frag[FLAGS_FRAG] = field >>> 8;
  frag[FLAGS_FRAG + 1] = field & 0xff;
  writeHeaderChecksum(frag, headerLength);
}

/**
 * The header for fragments after the first: the base header with only the
 * options whose copy flag is set (RFC 791), padded with end-of-list to a
 * multiple of 4 bytes. A malformed option ends the copying.
 */
function copiedOptionsHeader(header: Uint8Array): Uint8Array {
  const copied: number[] = [];
  for (let i = 20; i < header.length;) {
    const type = header[i]!;
    if (type === 0) break;
    if (type === 1) {
      i += 1;
      continue;
    }
    const len = header[i + 1] ?? 0;
    if (len < 2 || i + len > header.length) break;
    if (type & 0x80) copied.push(...header.subarray(i, i + len));
    i += len;
  }
  const length = 20 + Math.ceil(copied.length / 4) * 4;
  const out = new Uint8Array(length);
  out.set(header.subarray(0, 20));
  out.set(copied, 20);
  out[0] = 0x40 | (length / 4);
  return out;
}
