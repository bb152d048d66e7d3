/**
 * The Internet checksum (RFC 1071), shared by IPv4, ICMP, UDP and TCP.
 *
 * `sum` returns an unfolded partial sum so that callers can add a pseudo
 * header and a payload without touching any byte twice; `finish` folds the
 * carries and complements. Partial sums stay far below 2^53, so plain
 * numbers never lose a carry for any buffer a frame can hold.
 */

/** Adds the 16-bit big-endian words of buf[offset, offset+length) to `initial`. */
export function sum(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  let acc = initial;
  const end = offset + length;
  const evenEnd = end - ((end - offset) & 1);
  let i = offset;
  for (; i + 8 <= evenEnd; i += 8) {
    acc +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i < evenEnd; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!;
  if (evenEnd !== end) acc += buf[evenEnd]! << 8;
  return acc;
}

/** Folds a partial sum to 16 bits and complements it. */
export function finish(partial: number): number {
  let s = partial;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** The checksum of one contiguous range. */
export function checksum(buf: Uint8Array, offset: number, length: number): number {
  return finish(sum(buf, offset, length));
}

/** Partial sum of the IPv4 pseudo header (RFC 793 / RFC 768). */
export function pseudoSumV4(src: number, dst: number, protocol: number, l4Length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length;
}

/** Partial sum of the IPv6 pseudo header (RFC 8200 section 8.1). */
export function pseudoSumV6(
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  l4Length: number,
): number {
  return (
    sum(src, 0, 16) +
    sum(dst, 0, 16) +
    Math.floor(l4Length / 0x10000) +
    (l4Length & 0xffff) +
    nextHeader
  );
}
