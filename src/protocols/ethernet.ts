/**
 * Ethernet II framing (IEEE 802.3 with EtherType). A frame on the tap is
 * destination MAC, source MAC, EtherType, payload; no FCS, no VLAN tags
 * (a tagged frame parses, and its EtherType 0x8100 is simply unhandled).
 */
import type { Mac } from './address.js';
import { need } from './errors.js';

export const ETH_HEADER_LENGTH = 14;
const DST = 0;
const SRC = 6;
const TYPE = 12;

export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  IPv6: 0x86dd,
} as const;

/** Throws ParseError('ethernet.truncated') unless a header is present. */
export function checkEthernet(frame: Uint8Array): void {
  need(frame, 0, ETH_HEADER_LENGTH, 'ethernet.truncated');
}

export function etherType(frame: Uint8Array): number {
  return (frame[TYPE]! << 8) | frame[TYPE + 1]!;
}

export function ethDestination(frame: Uint8Array): Uint8Array {
  return frame.subarray(DST, DST + 6);
}

export function ethSource(frame: Uint8Array): Uint8Array {
  return frame.subarray(SRC, SRC + 6);
}

/** Writes a header at buf[offset]; returns the payload offset. */
export function writeEthernet(
  buf: Uint8Array,
  offset: number,
  dst: Uint8Array,
  src: Mac,
  type: number,
): number {
  buf.set(dst.subarray(0, 6), offset + DST);
  buf.set(src, offset + SRC);
  buf[offset + TYPE] = type >>> 8;
  buf[offset + TYPE + 1] = type & 0xff;
  return offset + ETH_HEADER_LENGTH;
}
