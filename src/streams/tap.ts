/**
 * The tap device as an Observable source of frames and a batched sink.
 *
 * `frames$` is hot and shared: the device receives frames whether or not
 * anyone listens. Subscribing (the first subscriber) starts polling the fd
 * from libuv's event loop; unsubscribing the last one stops polling, and
 * frames then wait in the kernel's tap queue (which drops on overflow, as
 * any NIC does) until someone subscribes again. Unsubscribing never closes
 * the device: `close()` does, and completes `frames$`.
 *
 * Frames are `Buffer` views into a pooled read buffer. A view stays valid
 * for as long as it is referenced, so operators may keep frames without
 * copying them, with one exception the owner opts into: with `recycle`,
 * a frame handed to `release` (the stack does, for TCP frames it is done
 * with) may be overwritten by a later read, and frames to the guest made
 * by `headedFrame` are reused once written. Only a pipeline whose every
 * stage is known to keep no frame may turn it on (the CLI does when it
 * adds no operators of its own); library users leave it off.
 *
 * The sink queues frames and writes them in one native call per event-loop
 * turn. When the kernel says EAGAIN the sink waits for POLLOUT rather than
 * dropping; `write()` returns false above a high-water mark so producers can
 * pause (as with Node streams) and `drain$` tells them when to resume.
 * Only past a hard cap does it drop, and it counts what it drops.
 */
import { Observable, Subject, share } from 'rxjs';
import { native, type NativePoller, type OpenTapRequest } from '../native.js';
import { VNET_HDR_LENGTH, headedFrames, releaseHeadedFrame, trustedChecksum } from './offload.js';
import { Recycler } from './recycler.js';

const READABLE = 1;
const WRITABLE = 2;
const POOL_SIZE = 1 << 20;
const FRAMES_PER_WAKE = 256;
const HIGH_WATER_FRAMES = 1024;
const HARD_CAP_FRAMES = 16384;

export interface TapStats {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  readErrors: number;
  writeErrors: number;
  writeDropped: number;
}

export class TapDevice {
  readonly frames$: Observable<Buffer>;
  readonly stats: TapStats = {
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    readErrors: 0,
    writeErrors: 0,
    writeDropped: 0,
  };
  private readonly drainSubject = new Subject<void>();
  /** Emits when a backlogged sink has drained below its high-water mark. */
  readonly drain$ = this.drainSubject.asObservable();

  private readonly poller: NativePoller;
  private readonly closed$ = new Subject<void>();
  private reading = false;
  private onFrames: ((frame: Buffer) => void) | undefined;
  private onReadError: ((err: Error) => void) | undefined;
  private readonly pools = new Recycler(POOL_SIZE, 8);
  /** Frames may be reused once released or written (see the module comment). */
  recycle = false;
  private readonly lengths = new Int32Array(FRAMES_PER_WAKE);
  private readonly maxFrame: number;

  private queue: Buffer[] = [];
  private flushScheduled = false;
  private waitingWritable = false;
  private readonly writeStatus = new Int32Array(2);
  private headed = new Uint8Array(64);
  private isClosed = false;

  /** Wraps an open non-blocking tap fd. `maxFrame` bounds one read. */
  constructor(
    readonly fd: number,
    maxFrame: number,
    private readonly headerLength = 0,
  ) {
    this.maxFrame = maxFrame + headerLength;
    this.poller = new (native().Poller)(fd, (status, events) => this.onPoll(status, events));
    this.frames$ = new Observable<Buffer>((subscriber) => {
      this.onFrames = (f) => subscriber.next(f);
      this.onReadError = (e) => subscriber.error(e);
      const done = this.closed$.subscribe(() => subscriber.complete());
      this.reading = true;
      this.updatePoll();
      return () => {
        done.unsubscribe();
        this.onFrames = undefined;
        this.onReadError = undefined;
        this.reading = false;
        this.updatePoll();
      };
    }).pipe(share());
  }

  /** Opens a tap inside a namespace (see native/netns.cc). */
  static open(request: OpenTapRequest, maxFrame: number): TapDevice {
    const fd = native().openTap(request);
    return new TapDevice(fd, maxFrame, request.vnetHdr ? VNET_HDR_LENGTH : 0);
  }

  /** Queues a frame for the guest; false means "above high water, pause". */
  write(frame: Buffer): boolean {
    if (this.isClosed) return false;
    if (this.queue.length >= HARD_CAP_FRAMES) {
      this.stats.writeDropped++;
      return false;
    }
    this.queue.push(frame);
    if (!this.flushScheduled && !this.waitingWritable) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return this.queue.length < HIGH_WATER_FRAMES;
  }

  /** Frames queued but not yet accepted by the kernel. */
  get backlog(): number {
    return this.queue.length;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.poller.close();
    native().closeFd(this.fd);
    this.queue = [];
    this.closed$.next();
    this.closed$.complete();
    this.drainSubject.complete();
  }

  private updatePoll(): void {
    if (this.isClosed) return;
    const events = (this.reading ? READABLE : 0) | (this.waitingWritable ? WRITABLE : 0);
    this.poller.start(events);
  }

  private onPoll(status: number, events: number): void {
    if (status < 0) {
      this.stats.readErrors++;
      this.onReadError?.(new Error(`tap poll failed (libuv status ${status})`));
      return;
    }
    if (events & WRITABLE) {
      this.waitingWritable = false;
      this.flush();
      this.updatePoll();
    }
    if (events & READABLE) this.readBatch();
  }

  private readBatch(): void {
    const { buf, at } = this.pools.reserve(this.maxFrame);
    const n = native().readFrames(this.fd, buf, at, this.lengths, this.maxFrame);
    if (n < 0) {
      this.stats.readErrors++;
      this.onReadError?.(new Error(`tap read failed: errno ${-n}`));
      return;
    }
    const skip = this.headerLength;
    // The frames lie back to back from `at`; each cut is the next of them.
    let pos = at;
    for (let i = 0; i < n; i++) {
      const len = this.lengths[i]!;
      const flags = buf[pos]!;
      pos += len;
      const frame = this.pools.cut(len, skip);
      // NEEDS_CSUM or DATA_VALID: the checksum is the kernel's business.
      if (skip > 0 && (flags & 3) !== 0) trustedChecksum.add(frame);
      this.stats.framesIn++;
      this.stats.bytesIn += len - skip;
      this.onFrames?.(frame);
    }
  }

  /** With `recycle`: the stack is done with this frame from `frames$`. */
  release(frame: Uint8Array): void {
    if (this.recycle) this.pools.give(frame);
  }

  /** headed[i] = 1 where queue[i] carries its own virtio-net header. */
  private markHeaded(queue: Buffer[]): void {
    if (this.headed.length < queue.length) this.headed = new Uint8Array(queue.length * 2);
    for (let i = 0; i < queue.length; i++) this.headed[i] = headedFrames.has(queue[i]!) ? 1 : 0;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.isClosed || this.queue.length === 0) return;
    const queue = this.queue;
    const before = this.writeStatus[0]!;
    if (this.headerLength > 0) this.markHeaded(queue);
    const done = native().writeFrames(
      this.fd,
      queue,
      0,
      queue.length,
      this.writeStatus,
      this.headerLength,
      this.headed,
    );
    this.stats.writeErrors += this.writeStatus[0]! - before;
    for (let i = 0; i < done; i++) {
      this.stats.framesOut++;
      this.stats.bytesOut += queue[i]!.length;
      if (this.recycle) releaseHeadedFrame(queue[i]!);
    }
    const wasHigh = queue.length >= HIGH_WATER_FRAMES;
    this.queue = done === queue.length ? [] : queue.slice(done);
    if (this.queue.length > 0) {
      this.waitingWritable = true;
      this.updatePoll();
    } else if (wasHigh) {
      this.drainSubject.next();
    }
    if (wasHigh && this.queue.length > 0 && this.queue.length < HIGH_WATER_FRAMES) {
      this.drainSubject.next();
    }
  }
}
