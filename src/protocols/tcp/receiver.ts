/**
 * The receiving half of a TCP endpoint: what the peer sends us.
 *
 * It owns RCV.NXT and the window we advertise, decides whether a segment
 * is acceptable (RFC 9293 section 3.10.7.4, first check), trims it to the
 * window, delivers in-order bytes at once as views of the segment, holds
 * out-of-order bytes in a capped Reassembly, and decides when to ACK
 * (RFC 1122 4.2.3.2 and RFC 5681 4.2: delay at most `delayedAckMs`, but
 * ACK at once for every second segment, anything out of order, a segment
 * that fills a gap, a FIN, and (configurable) PSH).
 *
 * The window: room = receive buffer size - bytes delivered but not yet
 * consumed by the application. The right edge we advertise never moves
 * left: a window scale rounds down, so we keep accepting up to the highest
 * edge ever advertised (`rcvAdv`), even when the field we send, rounded,
 * says a little less. Receiver-side silly window avoidance (RFC 9293
 * 3.8.6.2.2) holds the edge until it can move by min(buffer/2, MSS).
 */
import { Reassembly } from './reassembly.js';
import { seq, seqAdd, seqDiff, seqGt, seqInWindow, seqLe, type Seq } from './seq.js';

/** Where the receiver sends its results; the endpoint implements it. */
export interface ReceiverOutput {
  deliver(bytes: Uint8Array): void;
}

export interface ReceiverOptions {
  bufferSize: number;
  reassemblyBytes: number;
  reassemblySegments: number;
  delayedAckMs: number;
  ackOnPush: boolean;
}

/** What one segment's text did, as bits for the endpoint. */
export const RcvResult = {
  /** The FIN is now in sequence: the peer will send nothing more. */
  Fin: 1,
} as const;

export class Receiver {
  irs: Seq = seq(0);
  rcvNxt: Seq = seq(0);
  /** The highest right edge advertised; we accept bytes up to it. */
  rcvAdv: Seq = seq(0);
  private shift = 0;
  private scale = 1;
  /** The largest window the field can carry with our scale (cached: hot). */
  private maxWindow: number;
  /** The MSS we announced: the yardstick for "a full-sized segment". */
  rcvMss = 536;
  /** Delivered to the application and not yet consumed. */
  unconsumed = 0;
  finReceived = false;

  /** First byte of the latest out-of-order segment (the first SACK block). */
  private lastOutOfOrder: Seq | undefined;
  /** Send an ACK as soon as the current input is processed. */
  ackNow = false;
  /** When a delayed ACK is due (ms), or Infinity. */
  delackDeadline = Infinity;
  private unackedSegments = 0;
  /** RCV.NXT in the last ACK we sent (RFC 7323 Last.ACK.sent). */
  lastAckSent: Seq = seq(0);

  /** TS.Recent (RFC 7323 section 4.3) and whether it holds a value. */
  tsRecent = 0;
  tsRecentValid = false;

  readonly ooo: Reassembly;
  /** Sequence number of a FIN that arrived out of order, if one did. */
  private oooFin: Seq | undefined;

  constructor(private readonly o: ReceiverOptions) {
    this.ooo = new Reassembly(o.reassemblyBytes, o.reassemblySegments);
    this.maxWindow = Math.min(o.bufferSize, 0xffff);
  }

  /** Our window scale shift (RFC 7323), 0 unless both sides agreed. */
  get rcvWscale(): number {
    return this.shift;
  }

  set rcvWscale(shift: number) {
    this.shift = shift;
    this.scale = 2 ** shift;
    this.maxWindow = Math.min(this.o.bufferSize, 0xffff * this.scale);
  }

  /** The peer's SYN arrived with sequence number `irs`. */
  init(irs: Seq): void {
    this.irs = irs;
    this.rcvNxt = seqAdd(irs, 1);
    this.rcvAdv = this.rcvNxt;
    this.lastAckSent = this.rcvNxt;
  }

  /** RCV.WND: the bytes we accept beyond RCV.NXT. */
  get rcvWnd(): number {
    return Math.max(0, seqDiff(this.rcvAdv, this.rcvNxt));
  }

  /** Free receive buffer space. */
  get room(): number {
    return Math.max(0, Math.min(this.maxWindow, this.o.bufferSize - this.unconsumed));
  }

  /** The window we would advertise now, before scaling. */
  private windowNow(): number {
    const cur = this.rcvWnd;
    const room = this.room;
    if (room <= cur) return cur;
    const step = Math.min(this.maxWindow / 2, this.rcvMss);
    return room - cur < step ? cur : room;
  }

  /** The window field for a segment we send now; moves `rcvAdv` forward. */
  advertise(): number {
    const field = Math.min(0xffff, Math.floor(this.windowNow() / this.scale));
    const edge = seqAdd(this.rcvNxt, field * this.scale);
    if (seqGt(edge, this.rcvAdv)) this.rcvAdv = edge;
    return field;
  }

  /** The (never scaled) window field for our SYN or SYN-ACK. */
  advertiseSyn(): number {
    const field = Math.min(0xffff, this.room);
    this.rcvAdv = seqAdd(this.rcvNxt, field);
    return field;
  }

  /**
   * The acceptability test of RFC 9293 3.10.7.4 for a segment occupying
   * `len` sequence numbers from `s`. One leniency, as Linux has: a bare
   * FIN at RCV.NXT is acceptable in a zero window (it needs no buffer).
   */
  acceptable(s: Seq, len: number, bareFin: boolean): boolean {
    const wnd = this.rcvWnd;
    if (len === 0) return wnd === 0 ? s === this.rcvNxt : seqInWindow(s, this.rcvNxt, wnd);
    if (wnd === 0) return bareFin && s === this.rcvNxt;
    return seqInWindow(s, this.rcvNxt, wnd) || seqInWindow(seqAdd(s, len - 1), this.rcvNxt, wnd);
  }

  /** Updates TS.Recent from an acceptable segment (RFC 7323 4.3). */
  noteTimestamp(s: Seq, tsVal: number): void {
    if (!this.tsRecentValid || seqLe(seq(this.tsRecent), seq(tsVal))) {
      if (seqLe(s, this.lastAckSent)) {
        this.tsRecent = tsVal;
        this.tsRecentValid = true;
      }
    }
  }

  /**
   * The text and FIN of an acceptable segment (steps 7 and 8). Delivers
   * what is in order, holds what is not; returns RcvResult bits.
   */
  onText(
    start: Seq,
    payload: Uint8Array,
    fin: boolean,
    push: boolean,
    now: number,
    out: ReceiverOutput,
  ): number {
    let s = start;
    let data = payload;
    let finHere = fin;

    // Trim what we already have, then what lies beyond the window.
    const behind = seqDiff(this.rcvNxt, s);
    if (behind > 0) {
      if (behind > data.length) {
        this.ackNow = true; // all old, FIN included: a duplicate
        return 0;
      }
      data = data.subarray(behind);
      s = this.rcvNxt;
    }
    const fits = seqDiff(this.rcvAdv, s);
    if (data.length > fits) {
      data = data.subarray(0, Math.max(0, fits));
      finHere = false;
    }

    if (s !== this.rcvNxt) return this.outOfOrder(s, data, finHere);
    return this.inOrder(data, finHere, push, now, out);
  }

  /** Writes the SACK blocks for our next ACK into `out` (empty: none). */
  sackBlocks(out: Seq[], max: number): void {
    this.ooo.sackBlocks(out, this.lastOutOfOrder, max);
  }

  private outOfOrder(s: Seq, data: Uint8Array, fin: boolean): number {
    if (data.length > 0) {
      this.ooo.insert(s, data, this.rcvNxt);
      this.lastOutOfOrder = s;
    }
    if (fin && this.oooFin === undefined) this.oooFin = seqAdd(s, data.length);
    this.ackNow = true; // a duplicate ACK tells the sender about the gap
    return 0;
  }

  private inOrder(
    data: Uint8Array,
    fin: boolean,
    push: boolean,
    now: number,
    out: ReceiverOutput,
  ): number {
    const hadGap = !this.ooo.isEmpty || this.oooFin !== undefined;
    if (data.length > 0) this.accept(data, out);
    if (hadGap) {
      this.ackNow = true;
      for (let more = this.ooo.take(this.rcvNxt); more; more = this.ooo.take(this.rcvNxt)) {
        this.accept(more, out);
      }
      if (this.oooFin === this.rcvNxt) fin = true;
    }
    if (fin) {
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.finReceived = true;
      this.oooFin = undefined;
      this.ooo.clear();
      this.ackNow = true;
      return RcvResult.Fin;
    }
    if (data.length === 0) return 0;
    this.unackedSegments++;
    if (this.unackedSegments >= 2 || (push && this.o.ackOnPush)) this.ackNow = true;
    else if (this.delackDeadline === Infinity) this.delackDeadline = now + this.o.delayedAckMs;
    return 0;
  }

  private accept(bytes: Uint8Array, out: ReceiverOutput): void {
    this.rcvNxt = seqAdd(this.rcvNxt, bytes.length);
    this.unconsumed += bytes.length;
    out.deliver(bytes);
  }

  /**
   * The application consumed `n` delivered bytes. Asks for a window update
   * when the window was at most half open and can now at least double by
   * a full segment or more (so a sender stalled on our window learns).
   */
  consume(n: number): void {
    if (!(n >= 0 && n <= this.unconsumed)) {
      throw new RangeError(`tcp: consumed ${n} of ${this.unconsumed} unconsumed bytes`);
    }
    this.unconsumed -= n;
    if (this.finReceived || this.ackNow) return;
    const cur = this.rcvWnd;
    if (2 * cur > this.maxWindow) return;
    const next = this.windowNow();
    if (next >= 2 * cur && next - cur >= this.rcvMss) this.ackNow = true;
  }

  /** Every segment we send carries an ACK: nothing is pending after it. */
  onAckSent(): void {
    this.ackNow = false;
    this.unackedSegments = 0;
    this.delackDeadline = Infinity;
    this.lastAckSent = this.rcvNxt;
  }

  /** Frees held segments. */
  clear(): void {
    this.ooo.clear();
    this.oooFin = undefined;
    this.delackDeadline = Infinity;
  }
}
