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
