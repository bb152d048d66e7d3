/**
 * Out-of-order segments held until the gap before them fills (RFC 9293
 * section 3.10.7.4, "segment text"). Each piece is a copy (the frame it
 * came in may be reused by the glue), kept sorted by sequence number,
 * never overlapping another: a new segment contributes only the bytes not
 * already held. Both the bytes and the number of pieces are capped; what
 * does not fit is not held, never acknowledged, and so retransmitted by
 * the peer: the cap costs throughput under loss, never data.
 */
import { seqAdd, seqDiff, type Seq } from './seq.js';

interface Piece {
  seq: Seq;
  data: Uint8Array;
}

export class Reassembly {
  private pieces: Piece[] = [];
  /** Bytes held. */
  bytes = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxPieces: number,
  ) {}

  get isEmpty(): boolean {
    return this.pieces.length === 0;
  }

  get pieceCount(): number {
    return this.pieces.length;
  }

  /**
   * Holds the bytes of `data` (starting at `start`, after `rcvNxt`) that no
   * piece holds yet. Returns how many bytes were newly held.
   */
  insert(start: Seq, data: Uint8Array, rcvNxt: Seq): number {
    const base = seqDiff(start, rcvNxt);
    let a = base;
    const b = base + data.length;
    let held = 0;
    let i = 0;
    while (a < b && i < this.pieces.length) {
      const p = this.pieces[i]!;
      const pa = seqDiff(p.seq, rcvNxt);
      const pb = pa + p.data.length;
      if (pb <= a) {
        i++;
        continue;
      }
      if (pa >= b) break;
      if (a < pa) {
        const n = this.hold(i, rcvNxt, a, data.subarray(a - base, pa - base));
        if (n === 0) return held;
        held += n;
        i++;
      }
      a = Math.max(a, pb);
      i++;
    }
    if (a < b) held += this.hold(i, rcvNxt, a, data.subarray(a - base, b - base));
    return held;
  }

  /** Inserts a copy of `bytes` as piece index `i` if the caps allow. */
  private hold(i: number, rcvNxt: Seq, rel: number, bytes: Uint8Array): number {
    if (this.pieces.length >= this.maxPieces || this.bytes + bytes.length > this.maxBytes) {
      return 0;
    }
    // A real copy: Buffer's own slice() would be a view into the frame.
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    this.pieces.splice(i, 0, { seq: seqAdd(rcvNxt, rel), data: copy });
    this.bytes += bytes.length;
    return bytes.length;
  }

  /**
   * Takes the held bytes that continue the stream at `rcvNxt`, dropping
   * pieces wholly behind it; undefined when the next byte is missing.
   */
  take(rcvNxt: Seq): Uint8Array | undefined {
    while (this.pieces.length > 0) {
      const p = this.pieces[0]!;
      const pa = seqDiff(p.seq, rcvNxt);
      if (pa > 0) return undefined;
      this.pieces.shift();
      this.bytes -= p.data.length;
      if (pa + p.data.length > 0) return p.data.subarray(-pa);
    }
    return undefined;
  }

  /**
   * The held bytes as SACK blocks (RFC 2018): runs of adjacent pieces
   * merged, written into `out` as left, right pairs, at most `max` of them.
   * The block holding `recent` (the latest segment's first byte) comes
   * first, as section 4 asks; the rest follow in sequence order.
   */
  sackBlocks(out: Seq[], recent: Seq | undefined, max: number): void {
    out.length = 0;
    let first = -1;
    for (let i = 0; i < this.pieces.length;) {
      const left = this.pieces[i]!.seq;
      let right = seqAdd(left, this.pieces[i]!.data.length);
      let j = i + 1;
      while (j < this.pieces.length && this.pieces[j]!.seq === right) {
        right = seqAdd(right, this.pieces[j]!.data.length);
        j++;
      }
      const holdsRecent =
        recent !== undefined && seqDiff(recent, left) >= 0 && seqDiff(right, recent) > 0;
      if (holdsRecent && first < 0) first = out.length;
      out.push(left, right);
      i = j;
    }
    if (first > 0) out.unshift(...out.splice(first, 2));
    if (out.length > 2 * max) out.length = 2 * max;
  }

  /** Forgets everything (the connection is gone). */
  clear(): void {
    this.pieces = [];
    this.bytes = 0;
  }
}
