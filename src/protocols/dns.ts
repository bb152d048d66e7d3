/**
 * A minimal DNS (RFC 1035) codec: what the forwarder needs to relay queries
 * (header view, id rewriting, the question), what tests need to run a tiny
 * DNS server (A/AAAA answers), and DNS over TCP framing (RFC 1035 4.2.2,
 * RFC 7766).
 *
 * Interface:
 * - `DnsHeader.parse(buf, offset, length)`: a view over the 12-byte header
 *   (id, flags and their fields, the four counts); `dns.truncated`.
 * - `setDnsId(buf, offset, id)` rewrites the id in place.
 * - `parseQuestion(buf, offset, length)` reads the first question: name
 *   (presentation text, RFC 1035 5.1 escapes), type, class, and the offset
 *   past it. Compression pointers must point before every position the name
 *   has been read from so far, which makes loops impossible; names are
 *   limited to 255 bytes and labels to 63. ParseError codes:
 *   `dns.truncated`, `dns.no-question`, `dns.bad-label`, `dns.bad-pointer`,
 *   `dns.name-too-long`.
 * - `encodeDnsQuery(id, name, type)` and `encodeDnsResponse(query, answers,
 *   rcode)` build messages; answers are A or AAAA records whose owner is a
 *   pointer to the question name. `encodeName` throws `dns.bad-name`.
 * - `encodeDnsError(query, rcode)` answers a query with an error and no
 *   records (the forwarder's SERVFAIL when it has no upstream): header and
 *   first question echoed, QR and RA set, opcode and RD kept.
 * - `frameDnsTcp(message)` prefixes the 2-byte length; `DnsTcpDeframer`
 *   takes a TCP byte stream chunk by chunk and returns whole messages,
 *   buffering at most one partial message.
 *
 * Not done: parsing answer, authority or additional records, EDNS(0),
 * DNSSEC, name compression in the encoder beyond the answer owner.
 */
import { writeIpv4, type Ipv4 } from './address.js';
import { ParseError, need } from './errors.js';

export const DNS_HEADER = 12;
const ID = 0;
const FLAGS = 2;
const QDCOUNT = 4;
const ANCOUNT = 6;
const NSCOUNT = 8;
const ARCOUNT = 10;

const MAX_NAME = 255;
const MAX_LABEL = 63;
const POINTER = 0xc0;

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
} as const;
export const DnsClass = { IN: 1 } as const;
export const DnsRcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
} as const;

export class DnsHeader {
  private constructor(
    readonly buf: Uint8Array,
    readonly offset: number,
  ) {}

  static parse(buf: Uint8Array, offset = 0, length = buf.length - offset): DnsHeader {
    if (length < DNS_HEADER) throw new ParseError('dns.truncated');
    need(buf, offset, length, 'dns.truncated');
    return new DnsHeader(buf, offset);
  }

  get id(): number {
    return this.u16(ID);
  }

  get flags(): number {
    return this.u16(FLAGS);
  }

  /** True for a response. */
  get qr(): boolean {
    return (this.flags & 0x8000) !== 0;
  }

  get opcode(): number {
    return (this.flags >> 11) & 0xf;
  }

  get aa(): boolean {
    return (this.flags & 0x0400) !== 0;
  }

  get tc(): boolean {
    return (this.flags & 0x0200) !== 0;
  }

  get rd(): boolean {
    return (this.flags & 0x0100) !== 0;
  }

  get ra(): boolean {
    return (this.flags & 0x0080) !== 0;
  }

  get rcode(): number {
    return this.flags & 0xf;
  }

  get qdcount(): number {
    return this.u16(QDCOUNT);
  }

  get ancount(): number {
    return this.u16(ANCOUNT);
  }

  get nscount(): number {
    return this.u16(NSCOUNT);
  }

  get arcount(): number {
    return this.u16(ARCOUNT);
  }

  private u16(at: number): number {
    return (this.buf[this.offset + at]! << 8) | this.buf[this.offset + at + 1]!;
  }
}

/** Rewrites the id of the message at buf[offset] (the forwarder's own ids). */
export function setDnsId(buf: Uint8Array, offset: number, id: number): void {
  need(buf, offset, 2, 'dns.truncated');
  buf[offset + ID] = (id >>> 8) & 0xff;
  buf[offset + ID + 1] = id & 0xff;
}

export interface DnsQuestion {
  /** Presentation form without the final dot ("example.com"; "." for the root). */
  name: string;
  type: number;
  class: number;
  /** Offset just past the question in the buffer. */
  end: number;
}

/** Reads the first question of the message at buf[offset, offset+length). */
export function parseQuestion(
  buf: Uint8Array,
  offset = 0,
  length = buf.length - offset,
): DnsQuestion {
  const header = DnsHeader.parse(buf, offset, length);
  if (header.qdcount === 0) throw new ParseError('dns.no-question');
  const messageEnd = offset + length;
  const { name, end } = readName(buf, offset, offset + DNS_HEADER, messageEnd);
  if (end + 4 > messageEnd) throw new ParseError('dns.truncated');
  const type = (buf[end]! << 8) | buf[end + 1]!;
  const klass = (buf[end + 2]! << 8) | buf[end + 3]!;
  return { name, type, class: klass, end: end + 4 };
}

/**
 * Reads the name at buf[at]; `start` is where the message begins (pointers
 * count from there), `messageEnd` where it ends. Returns the name and the
 * offset past it where it was first read (past the first pointer, if any).
 */
export function readName(
  buf: Uint8Array,
  start: number,
  at: number,
  messageEnd: number,
): { name: string; end: number } {
  const labels: string[] = [];
  let wireLength = 1;
  let floor = at;
  let end: number | undefined;
  for (let i = at; ;) {
    if (i >= messageEnd) throw new ParseError('dns.truncated');
    const len = buf[i]!;
    if (len === 0) return { name: labels.length === 0 ? '.' : labels.join('.'), end: end ?? i + 1 };
    if ((len & POINTER) === POINTER) {
      if (i + 2 > messageEnd) throw new ParseError('dns.truncated');
      const target = start + (((len & 0x3f) << 8) | buf[i + 1]!);
      if (target >= floor) throw new ParseError('dns.bad-pointer');
      end ??= i + 2;
      floor = target;
      i = target;
      continue;
    }
    if ((len & POINTER) !== 0) throw new ParseError('dns.bad-label');
    if (i + 1 + len > messageEnd) throw new ParseError('dns.truncated');
    wireLength += 1 + len;
    if (wireLength > MAX_NAME) throw new ParseError('dns.name-too-long');
    labels.push(labelText(buf.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
}

/** RFC 1035 5.1 presentation: `.` and `\` escaped, other unprintables as \DDD. */
function labelText(label: Uint8Array): string {
  let s = '';
  for (const b of label) {
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + b.toString().padStart(3, '0');
  }
  return s;
}

/** Wire form of a presentation name (escapes as `readName` writes them). */
export function encodeName(name: string): Uint8Array {
  const out: number[] = [];
  if (name !== '.' && name !== '') {
    const labels = splitLabels(name);
    if (labels.length > 1 && labels[labels.length - 1]!.length === 0) labels.pop();
    for (const label of labels) {
      if (label.length === 0 || label.length > MAX_LABEL) throw new ParseError('dns.bad-name');
      out.push(label.length, ...label);
    }
  }
  out.push(0);
  if (out.length > MAX_NAME) throw new ParseError('dns.bad-name');
  return Uint8Array.from(out);
}

function splitLabels(text: string): number[][] {
  const bytes = new TextEncoder().encode(text);
  const labels: number[][] = [[]];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x2e) {
      labels.push([]);
      continue;
    }
    let value = b;
    if (b === 0x5c) {
      const digits = String.fromCharCode(...bytes.subarray(i + 1, i + 4));
      if (/^\d{3}$/.test(digits) && Number(digits) <= 255) {
        value = Number(digits);
        i += 3;
      } else if (i + 1 < bytes.length) {
        value = bytes[++i]!;
      } else {
        throw new ParseError('dns.bad-name');
      }
    }
    labels[labels.length - 1]!.push(value);
  }
  return labels;
}

/** A recursive query for `name`. */
export function encodeDnsQuery(id: number, name: string, type: number, klass = 1): Uint8Array {
  const qname = encodeName(name);
  const out = new Uint8Array(DNS_HEADER + qname.length + 4);
  writeHeader(out, id, 0x0100, 1, 0);
  out.set(qname, DNS_HEADER);
  writeU16(out, DNS_HEADER + qname.length, type);
  writeU16(out, DNS_HEADER + qname.length + 2, klass);
  return out;
}

export type DnsAddressRecord =
  { type: 'A'; address: Ipv4; ttl: number } | { type: 'AAAA'; address: Uint8Array; ttl: number };

/**
 * A response to `query` (id, RD and the question echoed; QR and RA set)
 * with the given address records, owned by the question's name.
 */
export function encodeDnsResponse(
  query: { id: number; rd: boolean; question: DnsQuestion },
  answers: readonly DnsAddressRecord[],
  rcode = 0,
): Uint8Array {
  const q = query.question;
  const qname = encodeName(q.name);
  const rdata = (a: DnsAddressRecord) => (a.type === 'A' ? 4 : 16);
  const size = answers.reduce((n, a) => n + 12 + rdata(a), DNS_HEADER + qname.length + 4);
  const out = new Uint8Array(size);
  const flags = 0x8080 | (query.rd ? 0x0100 : 0) | (rcode & 0xf);
  writeHeader(out, query.id, flags, 1, answers.length);
  out.set(qname, DNS_HEADER);
  let i = DNS_HEADER + qname.length;
  writeU16(out, i, q.type);
  writeU16(out, i + 2, q.class);
  i += 4;
  for (const a of answers) {
    writeU16(out, i, (POINTER << 8) | DNS_HEADER);
    writeU16(out, i + 2, a.type === 'A' ? DnsType.A : DnsType.AAAA);
    writeU16(out, i + 4, DnsClass.IN);
    writeIpv4(out, i + 6, a.ttl >>> 0);
    writeU16(out, i + 10, rdata(a));
    if (a.type === 'A') writeIpv4(out, i + 12, a.address);
    else out.set(a.address.subarray(0, 16), i + 12);
    i += 12 + rdata(a);
  }
  return out;
}

/** An error response to `query` (see the module comment). */
export function encodeDnsError(query: Uint8Array, rcode: number): Uint8Array {
  const header = DnsHeader.parse(query);
  const { end } = parseQuestion(query);
  const out = query.slice(0, end);
  const flags = 0x8080 | (header.flags & 0x7900) | (rcode & 0xf);
  writeHeader(out, header.id, flags, 1, 0);
  writeU16(out, NSCOUNT, 0);
  writeU16(out, ARCOUNT, 0);
  return out;
}

function writeHeader(out: Uint8Array, id: number, flags: number, qd: number, an: number): void {
  writeU16(out, ID, id);
  writeU16(out, FLAGS, flags);
  writeU16(out, QDCOUNT, qd);
  writeU16(out, ANCOUNT, an);
}

function writeU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}

/** The message with its 2-byte length prefix, for DNS over TCP. */
export function frameDnsTcp(message: Uint8Array): Uint8Array {
  if (message.length > 0xffff) throw new ParseError('dns.tcp.too-long');
  const out = new Uint8Array(2 + message.length);
  writeU16(out, 0, message.length);
  out.set(message, 2);
  return out;
}

/** Splits a DNS-over-TCP byte stream into messages. */
export class DnsTcpDeframer {
  private pending = new Uint8Array(0);

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Adds bytes from the stream; returns the messages they complete (copies). */
  push(chunk: Uint8Array): Uint8Array[] {
    let data = chunk;
    if (this.pending.length > 0) {
      data = new Uint8Array(this.pending.length + chunk.length);
      data.set(this.pending);
      data.set(chunk, this.pending.length);
    }
    const messages: Uint8Array[] = [];
    let i = 0;
    while (i + 2 <= data.length) {
      const len = (data[i]! << 8) | data[i + 1]!;
      if (i + 2 + len > data.length) break;
      messages.push(data.slice(i + 2, i + 2 + len));
      i += 2 + len;
    }
    this.pending = data.slice(i);
    return messages;
  }
}
