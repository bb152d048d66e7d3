/**
 * Address forms used across the stack. IPv4 addresses are unsigned 32-bit
 * numbers (cheap to compare, mask and hash); MAC and IPv6 addresses are
 * byte arrays. Text conversions live here and nowhere else.
 */
import { ParseError } from './errors.js';

export type Ipv4 = number;

export function ipv4ToString(a: Ipv4): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Parses dotted-quad text; throws ParseError('ipv4.text') otherwise. */
export function parseIpv4(text: string): Ipv4 {
  const parts = text.split('.');
  if (parts.length !== 4) throw new ParseError('ipv4.text', `not an IPv4 address: ${text}`);
  let a = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) {
      throw new ParseError('ipv4.text', `not an IPv4 address: ${text}`);
    }
    a = a * 256 + Number(p);
  }
  return a >>> 0;
}

export function readIpv4(buf: Uint8Array, offset: number): Ipv4 {
  return (
    ((buf[offset]! << 24) |
      (buf[offset + 1]! << 16) |
      (buf[offset + 2]! << 8) |
      buf[offset + 3]!) >>>
    0
  );
}

export function writeIpv4(buf: Uint8Array, offset: number, a: Ipv4): void {
  buf[offset] = a >>> 24;
  buf[offset + 1] = (a >>> 16) & 0xff;
  buf[offset + 2] = (a >>> 8) & 0xff;
  buf[offset + 3] = a & 0xff;
}

/** The netmask of a prefix length, 0..32. */
export function prefixMask(prefix: number): Ipv4 {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export type Mac = Uint8Array;

export const BROADCAST_MAC: Mac = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export function macToString(m: Mac): string {
  return Array.from(m, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Parses `aa:bb:cc:dd:ee:ff`; throws ParseError('mac.text') otherwise. */
export function parseMac(text: string): Mac {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new ParseError('mac.text', `not a MAC address: ${text}`);
  }
  return Uint8Array.from(text.split(':'), (h) => parseInt(h, 16));
}

export function macEquals(a: Uint8Array, aOffset: number, b: Mac): boolean {
  for (let i = 0; i < 6; i++) if (a[aOffset + i] !== b[i]) return false;
  return true;
}

/** IPv6 addresses: 16 bytes in network order. */
export type Ipv6 = Uint8Array;

/**
 * Parses RFC 4291 2.2 text: eight groups of 1-4 hex digits, one `::` for a
 * run of zero groups, an optional dotted-quad tail. No zone index, no
 * brackets. Throws ParseError('ipv6.text') otherwise.
 */
export function parseIpv6(text: string): Ipv6 {
  const fail = (): never => {
    throw new ParseError('ipv6.text', `not an IPv6 address: ${text}`);
  };
  const halves = text.split('::');
  if (halves.length > 2) fail();
  const groups = (s: string): number[] => {
    if (s === '') return [];
    const parts = s.split(':');
    const out: number[] = [];
    parts.forEach((p, i) => {
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        fail();
      }
    });
    return out;
  };
  let head: number[] = [];
  let tail: number[] = [];
  try {
    head = groups(halves[0]!);
    tail = halves.length === 2 ? groups(halves[1]!) : [];
  } catch {
    fail();
  }
  if (halves.length === 2 && halves[0]!.includes('.')) fail();
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) fail();
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * RFC 5952 text: lower case, no leading zeros, the longest run of two or
 * more zero groups (the first of equals) as `::`, IPv4-mapped addresses
 * with a dotted-quad tail.
 */
export function ipv6ToString(a: Uint8Array, offset = 0): string {
  const g = Array.from({ length: 8 }, (_, i) => (a[offset + 2 * i]! << 8) | a[offset + 2 * i + 1]!);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${ipv4ToString(((g[6]! << 16) | g[7]!) >>> 0)}`;
  }
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const text = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return text(g);
  return `${text(g.slice(0, best))}::${text(g.slice(best + bestLength))}`;
}

/** Copies the address at buf[offset]. */
export function readIpv6(buf: Uint8Array, offset: number): Ipv6 {
  return buf.slice(offset, offset + 16);
}

export function ipv6Equals(a: Uint8Array, aOffset: number, b: Ipv6): boolean {
  for (let i = 0; i < 16; i++) if (a[aOffset + i] !== b[i]) return false;
  return true;
}
