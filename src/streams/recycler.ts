/**
 * Memory the data path reuses instead of leaving to the garbage collector.
 *
 * A bulk transfer turns over a gigabyte a second of frame and socket
 * buffers. Left to the collector, tens of megabytes of dead ArrayBuffers
 * wait for each major collection (V8 starts one only after 64 MiB more
 * external memory), and that, not live data, was most of the stack's peak
 * RSS. A Recycler cuts views from fixed-size blocks and takes a block back
 * for reuse once it is full and every view cut from it has been given
 * back.
 *
 * The rule that keeps this safe: `give` a view exactly once, and only when
 * nothing will read or write it again. A second give of the same memory
 * is a caller bug the recycler cannot see (a view may be any subarray of
 * what was cut), so each caller gives from exactly one place. A view
 * never given back is no error: its block is simply never reused and goes
 * to the collector as before. Blocks are looked up weakly, so such a block
 * is really freed.
 */

interface Block {
  readonly buf: Buffer;
  /** Views cut from it and not yet given back. */
  refs: number;
  /** No longer the block views are cut from. */
  retired: boolean;
}

export class Recycler {
  private readonly blocks = new WeakMap<ArrayBufferLike, Block>();
  private readonly free: Block[] = [];
  private current: Block | undefined;
  private used = 0;
  /** Blocks allocated, and blocks reused from the free list (for tests). */
  readonly stats = { allocated: 0, reused: 0 };

  constructor(
    readonly blockSize: number,
    /** Free blocks kept for reuse at most; more go to the collector. */
    readonly maxFree: number,
  ) {}

  /**
   * Makes sure the current block has `room` bytes left and returns it with
   * the offset where they start. Nothing is cut until `cut`.
   */
  reserve(room: number): { buf: Buffer; at: number } {
    if (room > this.blockSize) throw new RangeError(`recycler: ${room} > ${this.blockSize}`);
    if (this.current === undefined || this.used + room > this.blockSize) this.nextBlock();
    return { buf: this.current!.buf, at: this.used };
  }

  /**
   * Cuts the next `n` bytes of the current block (after `reserve`) and
   * returns the view of them past the first `skip` (a header the caller
   * has read): one view per cut, however it is used.
   */
  cut(n: number, skip = 0): Buffer {
    const block = this.current!;
    const at = this.used;
    this.used = at + n;
    block.refs++;
    return block.buf.subarray(at + skip, at + n);
  }

  /** `n` bytes starting 8-byte aligned, viewed past the first `skip` (see `cut`). */
  take(n: number, skip = 0): Buffer {
    this.reserve(n);
    this.used = (this.used + 7) & ~7;
    if (this.used + n > this.blockSize) this.nextBlock();
    return this.cut(n, skip);
  }

  /** Gives back a view `take` or `cut` made; views of other memory are ignored. */
  give(view: Uint8Array): void {
    const block = this.blocks.get(view.buffer);
    if (block === undefined || block.refs <= 0) return;
    block.refs--;
    if (block.refs === 0 && block.retired) this.recycle(block);
  }

  private nextBlock(): void {
    const old = this.current;
    if (old !== undefined) {
      old.retired = true;
      if (old.refs === 0) this.recycle(old);
    }
    let block = this.free.pop();
    if (block === undefined) {
      block = { buf: Buffer.allocUnsafeSlow(this.blockSize), refs: 0, retired: false };
      this.blocks.set(block.buf.buffer, block);
      this.stats.allocated++;
    } else {
      block.retired = false;
      this.stats.reused++;
    }
    this.current = block;
    this.used = 0;
  }

  private recycle(block: Block): void {
    if (this.free.length < this.maxFree) this.free.push(block);
    else this.blocks.delete(block.buf.buffer);
  }
}
