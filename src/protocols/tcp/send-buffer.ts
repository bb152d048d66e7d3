/**
 * The send buffer: bytes the application handed us that the peer has not
 * acknowledged yet, acknowledged or not yet sent. A ring that grows on
 * demand (so an idle connection holds no memory) and is dropped again when
 * it empties.
 *
 * Application data is copied in once; segments are views over the ring
 * (`view` never crosses the ring's end, so a segment is cut short once per
 * lap, which costs one short segment per few MB). A view is valid until
 * the next `append`: the glue encodes a segment before returning from the
 * sink call, so nothing outlives that.
 *
 * Positions are absolute stream offsets (plain numbers, exact to 2^53), so
 * the sender maps a sequence number to a position with one subtraction.
 */

/** A ring is never allocated smaller than this. */
const MIN_RING = 16 * 1024;

export class SendBuffer {
  private ring: Uint8Array | undefined;
  /** Ring index of the byte at `start`. */
  private head = 0;
  /** Bytes held. */
  length = 0;
  /** Absolute position of the first byte held. */
  start = 0;

  /** Absolute position just past the last byte held. */
  get end(): number {
    return this.start + this.length;
  }

  /** The ring's size (0 when none is allocated). */
  get capacity(): number {
    return this.ring ? this.ring.length : 0;
  }

  /** Copies `data` in after the last byte. */
  append(data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    this.reserve(this.length + n);
    const ring = this.ring!;
    const at = (this.head + this.length) % ring.length;
    const first = Math.min(n, ring.length - at);
    ring.set(first === n ? data : data.subarray(0, first), at);
    if (first < n) ring.set(data.subarray(first), 0);
    this.length += n;
  }

  /**
   * A view of at most `max` bytes from absolute position `pos`
   * (start <= pos < end); shorter where the ring wraps.
   */
  view(pos: number, max: number): Uint8Array {
    const ring = this.ring!;
    const off = pos - this.start;
    const at = (this.head + off) % ring.length;
    const n = Math.min(max, this.length - off, ring.length - at);
    return ring.subarray(at, at + n);
  }

  /** Forgets the first `n` bytes (acknowledged by the peer). */
  release(n: number): void {
    if (n <= 0) return;
    this.start += n;
    this.length -= n;
    if (this.length === 0) {
      this.head = 0;
      this.ring = undefined;
    } else {
      this.head = (this.head + n) % this.ring!.length;
    }
  }

  /** Grows the ring to hold `need` bytes, keeping the data in order. */
  private reserve(need: number): void {
    const old = this.ring;
    if (old && old.length >= need) return;
    let size = Math.max(MIN_RING, old ? old.length * 2 : 0);
    while (size < need) size *= 2;
    const ring = new Uint8Array(size);
    if (old && this.length > 0) {
      const first = Math.min(this.length, old.length - this.head);
      ring.set(old.subarray(this.head, this.head + first), 0);
      if (first < this.length) ring.set(old.subarray(0, this.length - first), first);
    }
    this.ring = ring;
    this.head = 0;
  }
}
