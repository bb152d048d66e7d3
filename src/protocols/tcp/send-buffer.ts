/**
 * The send buffer: bytes the application handed us that the peer has not
 * acknowledged yet, acknowledged or not yet sent.
 *
 * It holds the application's chunks by reference, never copying them in:
 * the caller gives up a chunk when it appends it (host socket reads are
 * fresh buffers, so the glue has nothing to copy). A segment is a view of
 * one chunk, cut at the chunk's end where the chunk is long; where short
 * chunks follow each other they are gathered into a scratch buffer, so
 * small application writes still leave as full segments. A view is valid until
 * the next call on the buffer: the glue encodes a segment before returning
 * from the sink call, so nothing outlives that.
 *
 * When a chunk is wholly acknowledged it is handed to `onRelease`, if
 * given, so that the glue can reuse its memory (streams/recycler.ts).
 *
 * Positions are absolute stream offsets (plain numbers, exact to 2^53), so
 * the sender maps a sequence number to a position with one subtraction.
 */

const EMPTY = new Uint8Array(0);

/** A chunk tail shorter than this is copied together with what follows. */
const GATHER_BELOW = 8192;

export class SendBuffer {
  /** Chunks in stream order; those before `first` are released. */
  private chunks: Uint8Array[] = [];
  /** Absolute position of each chunk's first byte. */
  private starts: number[] = [];
  private first = 0;
  /** Index of the chunk the last `view` found: sends move forward. */
  private cursor = 0;
  private scratch = EMPTY;
  /** Bytes held. */
  length = 0;
  /** Absolute position of the first byte held. */
  start = 0;

  constructor(private readonly onRelease?: (chunk: Uint8Array) => void) {}

  /** Absolute position just past the last byte held. */
  get end(): number {
    return this.start + this.length;
  }

  /** Takes `data` after the last byte (by reference: do not modify it). */
  append(data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    this.chunks.push(data);
    this.starts.push(this.end);
    this.length += n;
  }

  /**
   * A view of at most `max` bytes from absolute position `pos`
   * (start <= pos < end). It stops at the end of a chunk that still has
   * GATHER_BELOW bytes or more from `pos`; shorter tails are gathered with
   * what follows, so segments are never needlessly small.
   */
  view(pos: number, max: number): Uint8Array {
    const i = this.find(pos);
    const chunk = this.chunks[i]!;
    const at = pos - this.starts[i]!;
    const want = Math.min(max, this.end - pos);
    const here = chunk.length - at;
    if (here >= want) return chunk.subarray(at, at + want);
    if (here >= GATHER_BELOW) return chunk.subarray(at);
    return this.gather(i, at, want);
  }

  /** Forgets the first `n` bytes (acknowledged by the peer). */
  release(n: number): void {
    if (n <= 0) return;
    this.start += n;
    this.length -= n;
    const chunks = this.chunks;
    while (this.first < chunks.length) {
      const c = chunks[this.first]!;
      if (this.starts[this.first]! + c.length > this.start) break;
      chunks[this.first++] = EMPTY;
      this.onRelease?.(c);
    }
    if (this.length === 0) {
      this.chunks = [];
      this.starts = [];
      this.first = 0;
      this.cursor = 0;
      this.scratch = EMPTY;
    } else if (this.first > 64 && this.first * 2 > chunks.length) {
      this.chunks = chunks.slice(this.first);
      this.starts = this.starts.slice(this.first);
      this.cursor = Math.max(0, this.cursor - this.first);
      this.first = 0;
    }
  }

  /** The index of the chunk holding absolute position `pos`. */
  private find(pos: number): number {
    const starts = this.starts;
    let i = Math.max(this.cursor, this.first);
    if (i >= starts.length || starts[i]! > pos) i = this.first;
    while (i + 1 < starts.length && starts[i + 1]! <= pos) i++;
    this.cursor = i;
    return i;
  }

  /** Copies `want` bytes from chunk `i` at `at` onwards into the scratch. */
  private gather(i: number, at: number, want: number): Uint8Array {
    if (this.scratch.length < want) this.scratch = new Uint8Array(Math.max(want, 2048));
    const out = this.scratch;
    let filled = 0;
    let offset = at;
    for (let k = i; filled < want; k++) {
      const c = this.chunks[k]!;
      const n = Math.min(c.length - offset, want - filled);
      out.set(offset === 0 && n === c.length ? c : c.subarray(offset, offset + n), filled);
      filled += n;
      offset = 0;
    }
    return out.subarray(0, want);
  }
}
