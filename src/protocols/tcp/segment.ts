/**
 * The TCP segment codec (RFC 9293 section 3.1, options from RFC 9293,
 * RFC 7323 and RFC 2018).
 *
 * `TcpSegment.parse` validates a segment once: the length, the data offset,
 * every option's length, a flag combination that makes sense, and, given
 * the pseudo-header partial sum, the checksum. The accessors that follow
 * cannot fail. Flags are folded into one control value (none, SYN, FIN or
 * RST; SYN+RST, SYN+FIN and FIN+RST are rejected) plus the ACK and PSH
 * bits; URG, ECE, CWR and NS are kept as `extraFlags` but not interpreted
 * (urgent data is plain data to us).
 *
 * Options understood: MSS, window scale, SACK-permitted, SACK blocks and
 * timestamps. Unknown options are skipped by their length; an option whose
 * length is below 2, runs past the header, or does not fit its kind is a
 * ParseError, because a peer that sends one is not speaking TCP.
 *
 * `encodeTcpSegment` writes header, options, payload and checksum in one
 * call, copying the payload once. The option layout is the one Linux uses,
 * so captured Linux segments re-encode byte for byte.
 */
import { finish, sum } from '../checksum.js';
import { ParseError, need } from '../errors.js';
import { seq, type Seq } from './seq.js';

export const TCP_HEADER_LENGTH = 20;
/** Data offset is 4 bits of 32-bit words. */
export const TCP_MAX_HEADER_LENGTH = 60;
const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  /** The ECN nonce bit, the low bit of byte 12 (RFC 3540, historic). */
  NS: 0x100,
} as const;
const EXTRA_FLAGS = TcpFlag.URG | TcpFlag.ECE | TcpFlag.CWR | TcpFlag.NS;

/** The one control value a segment carries (RFC 9293 allows no two). */
export const TcpControl = {
  None: 0,
  Syn: 1,
  Fin: 2,
  Rst: 3,
} as const;
export type TcpControl = (typeof TcpControl)[keyof typeof TcpControl];

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMPS = 8;

/** At most 4 SACK blocks fit in 40 bytes of options (RFC 2018 section 3). */
export const MAX_SACK_BLOCKS = 4;

function read16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function read32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function write16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v & 0xff;
}

function write32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/** Options parsed once; -1 marks an absent numeric option. */
class Options {
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  tsVal = -1;
  tsEcr = 0;
  /** Offset in the buffer of the first SACK block, and how many there are. */
  sackAt = 0;
  sackCount = 0;
}

function bad(code: string, detail: string): ParseError {
  return new ParseError(code, `${code}: ${detail}`);
}

/** Walks buf[start, end) and fills `o`; throws on a malformed option. */
function parseOptions(buf: Uint8Array, start: number, end: number, o: Options): void {
  let i = start;
  while (i < end) {
    const kind = buf[i]!;
    if (kind === OPT_END) return;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw bad('tcp.bad-option', `option ${kind} has no length`);
    const len = buf[i + 1]!;
    if (len < 2 || i + len > end) {
      throw bad('tcp.bad-option', `option ${kind} length ${len} at ${i - start}`);
    }
    readOption(buf, i, kind, len, o);
    i += len;
  }
}

function readOption(buf: Uint8Array, at: number, kind: number, len: number, o: Options): void {
  switch (kind) {
    case OPT_MSS:
      expectLength(kind, len, 4);
      o.mss = read16(buf, at + 2);
      return;
    case OPT_WSCALE:
      expectLength(kind, len, 3);
      o.windowScale = buf[at + 2]!;
      return;
    case OPT_SACK_PERMITTED:
      expectLength(kind, len, 2);
      o.sackPermitted = true;
      return;
    case OPT_SACK:
      if ((len - 2) % 8 !== 0 || len < 10) throw bad('tcp.bad-option', `SACK length ${len}`);
      o.sackAt = at + 2;
      o.sackCount = (len - 2) / 8;
      return;
    case OPT_TIMESTAMPS:
      expectLength(kind, len, 10);
      o.tsVal = read32(buf, at + 2);
      o.tsEcr = read32(buf, at + 6);
      return;
    default:
      return; // unknown: skipped by its length
  }
}

function expectLength(kind: number, len: number, want: number): void {
  if (len !== want) throw bad('tcp.bad-option', `option ${kind} length ${len}, want ${want}`);
}

/** Normalises the SYN/FIN/RST bits; throws on a contradiction. */
function controlOf(flags: number): TcpControl {
  const syn = flags & TcpFlag.SYN;
  const fin = flags & TcpFlag.FIN;
  const rst = flags & TcpFlag.RST;
  if ((syn && fin) || (syn && rst) || (fin && rst)) {
    throw bad('tcp.bad-flags', `contradictory flags 0x${flags.toString(16)}`);
  }
  if (syn) return TcpControl.Syn;
  if (fin) return TcpControl.Fin;
  if (rst) return TcpControl.Rst;
  return TcpControl.None;
}

/** A validated view over one TCP segment; accessors cannot fail. */
export class TcpSegment {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
    /** Header plus payload, as the network layer said. */
    readonly length: number,
    readonly headerLength: number,
    readonly control: TcpControl,
    private readonly flags: number,
    private readonly opts: Options,
  ) {}

  /**
   * Validates the segment at buf[offset, offset+length). With `pseudoSum`
   * (from pseudoSumV4/pseudoSumV6 with this `length`) the checksum is
   * verified too; leave it out only when a device has already verified it.
   */
  static parse(buf: Uint8Array, offset: number, length: number, pseudoSum?: number): TcpSegment {
    need(buf, offset, length, 'tcp.truncated');
    if (length < TCP_HEADER_LENGTH) throw bad('tcp.truncated', `${length}-byte segment`);
    const headerLength = (buf[offset + DATA_OFFSET]! >> 4) * 4;
    if (headerLength < TCP_HEADER_LENGTH || headerLength > length) {
      throw bad('tcp.bad-data-offset', `header ${headerLength} bytes in a ${length}-byte segment`);
    }
    const flags = ((buf[offset + DATA_OFFSET]! & 1) << 8) | buf[offset + FLAGS]!;
    const control = controlOf(flags);
    const opts = new Options();
    parseOptions(buf, offset + TCP_HEADER_LENGTH, offset + headerLength, opts);
    if (pseudoSum !== undefined && finish(sum(buf, offset, length, pseudoSum)) !== 0) {
      throw new ParseError('tcp.bad-checksum');
    }
    return new TcpSegment(buf, offset, length, headerLength, control, flags, opts);
  }

  get srcPort(): number {
    return read16(this.buf, this.offset + SRC_PORT);
  }

  get dstPort(): number {
    return read16(this.buf, this.offset + DST_PORT);
  }

  get seq(): Seq {
    return read32(this.buf, this.offset + SEQ) as Seq;
  }

  /** The acknowledgment number, or undefined when the ACK flag is clear. */
  get ack(): Seq | undefined {
    return this.flags & TcpFlag.ACK ? (read32(this.buf, this.offset + ACK) as Seq) : undefined;
  }

  get hasAck(): boolean {
    return (this.flags & TcpFlag.ACK) !== 0;
  }

  /** The raw acknowledgment field, whatever the ACK flag says. */
  get ackField(): number {
    return read32(this.buf, this.offset + ACK);
  }

  get push(): boolean {
    return (this.flags & TcpFlag.PSH) !== 0;
  }

  /** URG, ECE, CWR and NS, as TcpFlag bits. */
  get extraFlags(): number {
    return this.flags & EXTRA_FLAGS;
  }

  /** All flag bits, NS included, as TcpFlag bits. */
  get flagBits(): number {
    return this.flags;
  }

  /** The raw window field; the receiver applies the window scale. */
  get window(): number {
    return read16(this.buf, this.offset + WINDOW);
  }

  get checksum(): number {
    return read16(this.buf, this.offset + CHECKSUM);
  }

  get urgent(): number {
    return read16(this.buf, this.offset + URGENT);
  }

  get mss(): number | undefined {
    return this.opts.mss < 0 ? undefined : this.opts.mss;
  }

  /** The shift as sent; RFC 7323 says to use 14 for anything larger. */
  get windowScale(): number | undefined {
    return this.opts.windowScale < 0 ? undefined : this.opts.windowScale;
  }

  get sackPermitted(): boolean {
    return this.opts.sackPermitted;
  }

  get hasTimestamps(): boolean {
    return this.opts.tsVal >= 0;
  }

  /** TSval, or undefined without a timestamps option. */
  get tsVal(): number | undefined {
    return this.opts.tsVal < 0 ? undefined : this.opts.tsVal;
  }

  /** TSecr (0 without a timestamps option). */
  get tsEcr(): number {
    return this.opts.tsEcr;
  }

  get sackBlockCount(): number {
    return this.opts.sackCount;
  }

  /** Left edge of SACK block i (0 <= i < sackBlockCount). */
  sackLeft(i: number): Seq {
    return read32(this.buf, this.opts.sackAt + i * 8) as Seq;
  }

  /** Right edge (one past the last byte) of SACK block i. */
  sackRight(i: number): Seq {
    return read32(this.buf, this.opts.sackAt + i * 8 + 4) as Seq;
  }

  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }

  get payloadLength(): number {
    return this.length - this.headerLength;
  }

  /** A view of the payload (no copy). */
  get payload(): Uint8Array {
    return this.buf.subarray(this.payloadOffset, this.offset + this.length);
  }

  /** The sequence space the segment occupies: payload, plus one for SYN or FIN. */
  get seqLength(): number {
    const c = this.control;
    return this.payloadLength + (c === TcpControl.Syn || c === TcpControl.Fin ? 1 : 0);
  }

  /** A fresh representation of the segment (allocates; for tools and tests). */
  toRepr(): TcpRepr {
    const sack: Seq[] = [];
    for (let i = 0; i < this.sackBlockCount; i++) sack.push(this.sackLeft(i), this.sackRight(i));
    return {
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seq: this.seq,
      ack: this.ack,
      control: this.control,
      push: this.push,
      window: this.window,
      extraFlags: this.extraFlags,
      urgent: this.urgent,
      mss: this.mss,
      windowScale: this.windowScale,
      sackPermitted: this.sackPermitted,
      tsVal: this.tsVal,
      tsEcr: this.tsEcr,
      sackBlocks: sack.length > 0 ? sack : undefined,
      payload: this.payload,
    };
  }
}

/** What an outgoing segment says; `encodeTcpSegment` writes it. */
export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: Seq;
  /** The acknowledgment number; undefined leaves the ACK flag clear. */
  ack: Seq | undefined;
  control: TcpControl;
  push: boolean;
  /** The raw 16-bit window field, already shifted by the window scale. */
  window: number;
  /** URG/ECE/CWR/NS bits to set (TcpFlag values); 0 normally. */
  extraFlags?: number;
  urgent?: number;
  mss?: number | undefined;
  windowScale?: number | undefined;
  sackPermitted?: boolean;
  /** With tsVal set, a timestamps option carries tsVal and tsEcr. */
  tsVal?: number | undefined;
  tsEcr?: number;
  /** SACK blocks as [left0, right0, left1, right1, ...], at most 4 pairs. */
  sackBlocks?: readonly Seq[] | undefined;
  payload: Uint8Array;
}

/** Bytes of options `r` needs, padded to 4 as Linux lays them out. */
export function tcpOptionsLength(r: TcpRepr): number {
  let n = r.mss !== undefined ? 4 : 0;
  if (r.tsVal !== undefined) n += 12;
  else if (r.sackPermitted) n += 4;
  if (r.windowScale !== undefined) n += 4;
  const blocks = r.sackBlocks ? r.sackBlocks.length >> 1 : 0;
  if (blocks > 0) n += 4 + 8 * blocks;
  return n;
}

/** Header, options and payload length of the segment `r` describes. */
export function encodedLength(r: TcpRepr): number {
  return TCP_HEADER_LENGTH + tcpOptionsLength(r) + r.payload.length;
}

/** Writes the options of `r` at buf[at]; returns the offset after them. */
function writeOptions(buf: Uint8Array, at: number, r: TcpRepr): number {
  let i = at;
  if (r.mss !== undefined) {
    buf[i] = OPT_MSS;
    buf[i + 1] = 4;
    write16(buf, i + 2, r.mss);
    i += 4;
  }
  if (r.tsVal !== undefined) {
    buf[i] = r.sackPermitted ? OPT_SACK_PERMITTED : OPT_NOP;
    buf[i + 1] = r.sackPermitted ? 2 : OPT_NOP;
    buf[i + 2] = OPT_TIMESTAMPS;
    buf[i + 3] = 10;
    write32(buf, i + 4, r.tsVal);
    write32(buf, i + 8, r.tsEcr ?? 0);
    i += 12;
  } else if (r.sackPermitted) {
    buf.set(NOP_NOP_SACK_PERMITTED, i);
    i += 4;
  }
  if (r.windowScale !== undefined) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_WSCALE;
    buf[i + 2] = 3;
    buf[i + 3] = r.windowScale;
    i += 4;
  }
  return writeSackBlocks(buf, i, r.sackBlocks);
}

const NOP_NOP_SACK_PERMITTED = Uint8Array.of(OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2);

function writeSackBlocks(buf: Uint8Array, at: number, blocks: readonly Seq[] | undefined): number {
  const n = blocks ? blocks.length >> 1 : 0;
  if (n === 0) return at;
  buf[at] = OPT_NOP;
  buf[at + 1] = OPT_NOP;
  buf[at + 2] = OPT_SACK;
  buf[at + 3] = 2 + 8 * n;
  for (let b = 0; b < n; b++) {
    write32(buf, at + 4 + b * 8, blocks![2 * b]!);
    write32(buf, at + 8 + b * 8, blocks![2 * b + 1]!);
  }
  return at + 4 + 8 * n;
}

function flagsOf(r: TcpRepr): number {
  let f = (r.extraFlags ?? 0) & EXTRA_FLAGS;
  if (r.ack !== undefined) f |= TcpFlag.ACK;
  if (r.push) f |= TcpFlag.PSH;
  if (r.control === TcpControl.Syn) f |= TcpFlag.SYN;
  else if (r.control === TcpControl.Fin) f |= TcpFlag.FIN;
  else if (r.control === TcpControl.Rst) f |= TcpFlag.RST;
  return f;
}

/**
 * Writes the segment `r` at buf[offset] with its checksum; `pseudoSum` is
 * the pseudo-header partial sum for `encodedLength(r)` bytes. Returns the
 * offset just past the segment. Throws RangeError if `buf` is too small or
 * `r` needs more than 40 bytes of options (a caller bug, not bad input).
 *
 * With `partial`, the checksum field gets only the folded pseudo-header
 * sum, uncomplemented, and the bytes are not summed: the form a device
 * that finishes checksums expects (virtio-net NEEDS_CSUM, Linux
 * CHECKSUM_PARTIAL).
 */
export function encodeTcpSegment(
  buf: Uint8Array,
  offset: number,
  r: TcpRepr,
  pseudoSum: number,
  partial = false,
): number {
  const optLength = tcpOptionsLength(r);
  const headerLength = TCP_HEADER_LENGTH + optLength;
  const length = headerLength + r.payload.length;
  if (headerLength > TCP_MAX_HEADER_LENGTH) throw new RangeError('tcp: options exceed 40 bytes');
  if (offset < 0 || offset + length > buf.length) throw new RangeError('tcp: buffer too small');

  const flags = flagsOf(r);
  write16(buf, offset + SRC_PORT, r.srcPort);
  write16(buf, offset + DST_PORT, r.dstPort);
  write32(buf, offset + SEQ, r.seq);
  write32(buf, offset + ACK, r.ack ?? 0);
  buf[offset + DATA_OFFSET] = ((headerLength / 4) << 4) | (flags >> 8);
  buf[offset + FLAGS] = flags & 0xff;
  write16(buf, offset + WINDOW, r.window);
  write16(buf, offset + CHECKSUM, 0);
  write16(buf, offset + URGENT, r.urgent ?? 0);
  writeOptions(buf, offset + TCP_HEADER_LENGTH, r);
  buf.set(r.payload, offset + headerLength);

  const checksum = partial
    ? ~finish(pseudoSum) & 0xffff
    : finish(sum(buf, offset, length, pseudoSum));
  write16(buf, offset + CHECKSUM, checksum);
  return offset + length;
}

/**
 * The reply RFC 9293 (section 3.10.7.1) prescribes for a segment that
 * reaches no connection: nothing for a RST, a RST at the acknowledged
 * number for a segment with ACK, else a RST|ACK covering the segment.
 * The glue sends it for segments it has no endpoint for.
 */
export function resetFor(s: TcpSegment): TcpRepr | undefined {
  if (s.control === TcpControl.Rst) return undefined;
  const ack = s.ack;
  return {
    srcPort: s.dstPort,
    dstPort: s.srcPort,
    seq: ack ?? seq(0),
    ack: ack === undefined ? seq(s.seq + s.seqLength) : undefined,
    control: TcpControl.Rst,
    push: false,
    window: 0,
    payload: EMPTY,
  };
}

const EMPTY = new Uint8Array(0);
