/**
 * TCP sequence numbers (RFC 9293 section 3.4): unsigned 32-bit values
 * compared modulo 2^32, so that "a is before b" holds when b is less than
 * 2^31 ahead of a, across the wrap.
 *
 * `Seq` is a branded number: a plain number is not a `Seq` until it goes
 * through `seq()`, and two `Seq`s must never be compared with `<` (that is
 * wrong across the wrap); use `seqLt` and friends. Every helper returns a
 * value already reduced to [0, 2^32).
 */

declare const seqBrand: unique symbol;

/** A sequence or acknowledgment number, always in [0, 2^32). */
export type Seq = number & { readonly [seqBrand]: true };

/** Reduces any integer to a sequence number. */
export function seq(n: number): Seq {
  return (n >>> 0) as Seq;
}

/** a + n, modulo 2^32 (n may be negative). */
export function seqAdd(a: Seq, n: number): Seq {
  return ((a + n) >>> 0) as Seq;
}

/**
 * The signed distance a - b in [-2^31, 2^31): positive when a is after b.
 * Only meaningful when the two are less than 2^31 apart, as TCP guarantees
 * for numbers inside one window.
 */
export function seqDiff(a: Seq, b: Seq): number {
  return (a - b) | 0;
}

export function seqLt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: Seq, b: Seq): Seq {
  return seqGe(a, b) ? a : b;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: Seq, b: Seq): Seq {
  return seqLe(a, b) ? a : b;
}

/** start <= x < start + length, modulo 2^32 (length in [0, 2^32)). */
export function seqInWindow(x: Seq, start: Seq, length: number): boolean {
  return (x - start) >>> 0 < length;
}
