/**
 * The sending half of a TCP endpoint: what we send the peer.
 *
 * It owns SND.UNA, SND.NXT, the peer's window, the send buffer, the
 * congestion window and the retransmission and persist timers, and
 * decides what the next segment holds. The endpoint emits the segments
 * and tells the sender what was sent (`commit`).
 *
 * - New data goes out from SND.NXT while it fits both the peer's window
 *   (right edge SND.WL2 + SND.WND: the edge the peer actually advertised)
 *   and the congestion window. Sender silly window avoidance (RFC 9293
 *   3.8.6.2.1): a short segment waits while data is in flight, unless it
 *   empties the buffer or fills half the largest window seen. No Nagle:
 *   the host socket's reads already batch the bytes.
 * - Congestion control is RFC 5681 with NewReno recovery (RFC 6582):
 *   slow start counting bytes (RFC 3465, L = 2 SMSS), congestion
 *   avoidance, fast retransmit on the third duplicate ACK (sooner when
 *   fewer than four segments are in flight: RFC 5827 early retransmit), a
 *   partial ACK retransmitting the next hole. Initial window per RFC 6928.
 *   Under segmentation offload the SMSS of this arithmetic is the segment
 *   we send (up to 64 KiB): the tap carries, loses and acknowledges it as
 *   one, so counting it as one MSS starved the window after every loss
 *   and turned each lost super-segment into a retransmission timeout. A
 *   retransmission resends one such segment from SND.UNA.
 * - On a retransmission timeout we go back to SND.UNA (SND.NXT := SND.UNA,
 *   as BSD does) and resend in slow start; SND.MAX remembers the highest
 *   number sent, so ACKs up to it stay acceptable.
 * - Zero window: when nothing is in flight and the window is closed, the
 *   persist timer sends one byte beyond the window (RFC 9293 3.8.6.1); its
 *   retransmissions back off like any other and never give up while the
 *   peer keeps answering.
 *
 * Not done: the peer's SACK blocks are parsed but not used (no RFC 6675
 * scoreboard), no idle cwnd restart (RFC 5681 4.1), no ECN.
 */
import { RttEstimator } from './rtt.js';
import { SendBuffer } from './send-buffer.js';
import { seq, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax, type Seq } from './seq.js';

export interface SenderOptions {
  bufferSize: number;
  initialRto: number;
  minRto: number;
  maxRto: number;
  /** Largest new-data segment when the link does segmentation (0: the MSS). */
  gsoBytes?: number;
  /** Takes each chunk of the send buffer once it is wholly acknowledged. */
  onRelease?: (chunk: Uint8Array) => void;
}

/** What an ACK did, as bits for the endpoint. */
export const AckResult = {
  /** SND.UNA moved forward. */
  NewData: 1,
  /** Our FIN is acknowledged. */
  FinAcked: 2,
} as const;

const EMPTY = new Uint8Array(0);

export class Sender {
  iss: Seq = seq(0);
  sndUna: Seq = seq(0);
  sndNxt: Seq = seq(0);
  /** The highest sequence number sent, plus one (SND.NXT may go back). */
  sndMax: Seq = seq(0);
  /** SND.WND in bytes, scale applied. */
  sndWnd = 0;
  sndWl1: Seq = seq(0);
  sndWl2: Seq = seq(0);
  /** The peer's window scale shift. */
  sndWscale = 0;
  /** The largest window the peer has offered (RFC 5961 MAX.SND.WND). */
  maxSndWnd = 0;
  /** Payload bytes per segment (MSS less the options every segment carries). */
  mss = 536;

  readonly buf: SendBuffer;
  /** Sequence number of the first byte in `buf`. */
  private bufSeq: Seq = seq(0);
  /** The application closed: a FIN follows the buffered data. */
  finQueued = false;

  cwnd = 0;
  ssthresh = 2 ** 30;
  dupAcks = 0;
  inRecovery = false;
  private recover: Seq = seq(0);
  private caBytes = 0;
  /** A fast retransmission (or NewReno partial ACK) asks for one resend. */
  retransmitNow = false;

  readonly rtt: RttEstimator;
  rtoDeadline = Infinity;
  persistDeadline = Infinity;
  /** Retransmissions since the last ACK that moved anything. */
  retries = 0;
  /**
   * Our TSval on the last timeout retransmission: an ACK echoing anything
   * older measures the time since an earlier send, not a round trip.
   */
  echoFloor: number | undefined;
  private timing = false;
  private timedSeq: Seq = seq(0);
  private timedAt = 0;

  /** The segment `prepare*` chose. */
  outSeq: Seq = seq(0);
  outPayload: Uint8Array = EMPTY;
  outFin = false;
  outPush = false;

  constructor(private readonly o: SenderOptions) {
    this.rtt = new RttEstimator(o.initialRto, o.minRto, o.maxRto);
    this.buf = new SendBuffer(o.onRelease);
  }

  /** Starts the sequence space at `iss`; the SYN takes `iss`. */
  init(iss: Seq): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.bufSeq = seqAdd(iss, 1);
    this.recover = iss;
  }

  /** Sets the segment size and the initial window (RFC 6928). */
  setMss(mss: number): void {
    this.mss = Math.max(1, mss);
    this.cwnd = Math.min(10 * this.mss, Math.max(2 * this.mss, 14600));
  }

  /** Sequence number just past the buffered data (where a FIN goes). */
  get dataEnd(): Seq {
    return seqAdd(this.bufSeq, this.buf.length);
  }

  /** The right edge of the window the peer advertised. */
  get edge(): Seq {
    return seqAdd(this.sndWl2, this.sndWnd);
  }

  get finSent(): boolean {
    return this.finQueued && seqGt(this.sndMax, this.dataEnd);
  }

  get finAcked(): boolean {
    return this.finQueued && seqGt(this.sndUna, this.dataEnd);
  }

  /** Bytes the application may still queue (negative past the cap). */
  get room(): number {
    return this.o.bufferSize - this.buf.length;
  }

  get bufferSize(): number {
    return this.o.bufferSize;
  }

  /** Queued bytes not yet sent even once. */
  get unsent(): number {
    return Math.max(0, seqDiff(this.dataEnd, seqMax(this.sndNxt, this.bufSeq)));
  }

  /** Sets SND.WND from a SYN or the ACK of our SYN (unscaled there). */
  initWindow(window: number, segSeq: Seq, ack: Seq): void {
    this.sndWnd = window;
    this.maxSndWnd = Math.max(this.maxSndWnd, window);
    this.sndWl1 = segSeq;
    this.sndWl2 = ack;
  }

  private pos(s: Seq): number {
    return this.buf.start + seqDiff(s, this.bufSeq);
  }

  /**
   * Chooses the next segment of new data (or the FIN) from SND.NXT;
   * false when nothing may go now.
   */
  prepareNew(): boolean {
    const unsent = seqDiff(this.dataEnd, this.sndNxt);
    if (unsent > 0) return this.prepareData(unsent);
    if (unsent === 0 && this.finQueued) {
      this.setOut(this.sndNxt, EMPTY, true, false);
      return true;
    }
    return false;
  }

  /**
   * New data per segment: the MSS, or whole MSS multiples under GSO. This
   * is also the sender's SMSS for congestion control: the segment the link
   * carries and loses as one, and one duplicate ACK per segment received.
   */
  private segmentBytes(): number {
    const gso = this.o.gsoBytes ?? 0;
    return gso > this.mss ? gso - (gso % this.mss) : this.mss;
  }

  private prepareData(unsent: number): boolean {
    const wnd = seqDiff(this.edge, this.sndNxt);
    const cwndRoom = this.cwnd - seqDiff(this.sndNxt, this.sndUna);
    const len = Math.min(unsent, this.segmentBytes(), wnd, cwndRoom);
    if (len <= 0) return false;
    const inFlight = this.sndNxt !== this.sndUna;
    if (len < this.mss && len < unsent && inFlight && len < this.maxSndWnd / 2) return false;
    const payload = this.buf.view(this.pos(this.sndNxt), len);
    const last = payload.length === unsent;
    this.setOut(this.sndNxt, payload, last && this.finQueued, last);
    return true;
  }

  /**
   * Chooses a retransmission from SND.UNA: one segment of what was sent,
   * one byte of it if the window is closed (a zero-window probe).
   */
  prepareRetransmit(): boolean {
    const sentData = Math.min(
      seqDiff(this.dataEnd, this.sndUna),
      seqDiff(this.sndMax, this.sndUna),
    );
    const wnd = Math.max(1, seqDiff(this.edge, this.sndUna));
    const len = Math.max(0, Math.min(this.segmentBytes(), sentData, wnd));
    const payload = len > 0 ? this.buf.view(this.pos(this.sndUna), len) : EMPTY;
    const fin = this.finSent && seqAdd(this.sndUna, payload.length) === this.dataEnd;
    if (payload.length === 0 && !fin) return false;
    this.setOut(this.sndUna, payload, fin, fin || payload.length === sentData);
    return true;
  }

  /** Chooses a one-byte probe of new data beyond a closed window. */
  prepareProbe(): boolean {
    if (seqDiff(this.dataEnd, this.sndNxt) <= 0) return false;
    this.setOut(this.sndNxt, this.buf.view(this.pos(this.sndNxt), 1), false, false);
    return true;
  }

  private setOut(s: Seq, payload: Uint8Array, fin: boolean, push: boolean): void {
    this.outSeq = s;
    this.outPayload = payload;
    this.outFin = fin;
    this.outPush = push;
  }

  /** The prepared segment was sent at `now`. */
  commit(now: number, timestamps: boolean): void {
    const end = seqAdd(this.outSeq, this.outPayload.length + (this.outFin ? 1 : 0));
    if (seqGt(end, this.sndMax)) {
      if (!timestamps && !this.timing && seqGe(this.outSeq, this.sndMax)) {
        this.timing = true;
        this.timedSeq = end;
        this.timedAt = now;
      }
      this.sndMax = end;
    } else if (this.timing && seqLt(this.outSeq, this.timedSeq)) {
      this.timing = false; // Karn: a retransmitted segment is never timed
    }
    if (seqGt(end, this.sndNxt)) this.sndNxt = end;
    if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto;
    this.persistDeadline = Infinity;
  }

  /**
   * An acceptable ACK (SND.UNA - MAX.SND.WND <= ack <= SND.MAX) arrived in
   * a synchronized state. Returns AckResult bits.
   */
  onAck(
    ack: Seq,
    segSeq: Seq,
    window: number,
    segLen: number,
    tsEcr: number | undefined,
    now: number,
    tsNow: number,
  ): number {
    const wnd = window * 2 ** this.sndWscale;
    const wasClosed = seqLe(this.edge, this.sndUna);
    let windowChanged = false;
    if (seqLt(this.sndWl1, segSeq) || (this.sndWl1 === segSeq && seqLe(this.sndWl2, ack))) {
      windowChanged = wnd !== this.sndWnd;
      this.sndWnd = wnd;
      this.sndWl1 = segSeq;
      this.sndWl2 = ack;
      if (wnd > this.maxSndWnd) this.maxSndWnd = wnd;
    }
    if (seqGt(ack, this.sndUna)) {
      const finWasAcked = this.finAcked;
      this.onNewAck(ack, tsEcr, now, tsNow);
      return AckResult.NewData | (this.finAcked && !finWasAcked ? AckResult.FinAcked : 0);
    }
    if (seqLe(this.edge, this.sndUna))
      this.retries = 0; // closed window, peer alive
    else if (wasClosed && ack === this.sndUna) this.sndNxt = ack; // the probe was refused: resend it
    const outstanding = this.sndMax !== this.sndUna;
    if (ack === this.sndUna && segLen === 0 && !windowChanged && outstanding) this.onDupAck();
    return 0;
  }

  private onNewAck(ack: Seq, tsEcr: number | undefined, now: number, tsNow: number): void {
    const acked = seqDiff(ack, this.sndUna);
    const dataAcked = Math.min(Math.max(0, seqDiff(ack, this.bufSeq)), this.buf.length);
    this.buf.release(dataAcked);
    this.bufSeq = seqAdd(this.bufSeq, dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retries = 0;

    const floor = this.echoFloor;
    if (tsEcr !== undefined) {
      if (floor === undefined || seqGe(seq(tsEcr), seq(floor))) {
        this.rtt.sample(seqDiff(seq(tsNow), seq(tsEcr)));
      }
    } else if (this.timing && seqGe(ack, this.timedSeq)) {
      this.timing = false;
      this.rtt.sample(now - this.timedAt);
    }
    this.growWindow(acked);
    this.rtoDeadline = this.sndUna === this.sndMax ? Infinity : now + this.rtt.rto;
  }

  private growWindow(acked: number): void {
    const flight = seqDiff(this.sndMax, this.sndUna);
    const smss = this.segmentBytes();
    if (this.inRecovery) {
      if (seqGe(this.sndUna, this.recover)) {
        this.cwnd = Math.min(this.ssthresh, Math.max(flight, smss) + smss);
        this.inRecovery = false;
        this.dupAcks = 0;
      } else {
        // NewReno partial ACK: the next hole is lost too; resend it now.
        this.retransmitNow = true;
        this.cwnd = Math.max(smss, this.cwnd - acked + (acked >= smss ? smss : 0));
      }
      return;
    }
    this.dupAcks = 0;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * smss);
    } else {
      this.caBytes += acked;
      if (this.caBytes >= this.cwnd) {
        this.caBytes -= this.cwnd;
        this.cwnd += smss;
      }
    }
  }

  private onDupAck(): void {
    const smss = this.segmentBytes();
    this.dupAcks++;
    if (this.inRecovery) {
      this.cwnd += smss;
      return;
    }
    const flight = seqDiff(this.sndMax, this.sndUna);
    if (this.dupAcks !== this.dupThreshold(flight, smss)) return;
    if (!seqGt(this.sndUna, this.recover)) return;
    this.ssthresh = Math.max(Math.floor(flight / 2), 2 * smss);
    this.cwnd = this.ssthresh + this.dupAcks * smss;
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.retransmitNow = true;
  }

  /**
   * Three duplicate ACKs, or fewer when fewer than four segments are in
   * flight and nothing new may go (RFC 5827 early retransmit): with 64 KiB
   * segments a window often holds only a few, and their loss would
   * otherwise always cost a retransmission timeout. Never for a single
   * segment (nothing to duplicate its ACK) nor on a closed window, where
   * the ACKs answer zero-window probes.
   */
  private dupThreshold(flight: number, smss: number): number {
    const segments = Math.ceil(flight / smss);
    const closed = seqLe(this.edge, this.sndUna);
    if (segments >= 4 || segments < 2 || closed || !this.blocked()) return 3;
    return segments - 1;
  }

  /** No new data may go: none is waiting, or the windows are full. */
  private blocked(): boolean {
    const unsent = seqDiff(this.dataEnd, this.sndNxt);
    if (unsent <= 0) return true;
    const flight = seqDiff(this.sndNxt, this.sndUna);
    return seqDiff(this.edge, this.sndNxt) <= 0 || this.cwnd - flight <= 0;
  }

  /**
   * The retransmission timer expired with data outstanding: collapse the
   * window (unless it is only a zero-window probe), back off, go back.
   */
  onTimeout(): void {
    const probing = seqLe(this.edge, this.sndUna);
    if (!probing) {
      const flight = seqDiff(this.sndMax, this.sndUna);
      this.ssthresh = Math.max(Math.floor(flight / 2), 2 * this.segmentBytes());
      this.cwnd = this.segmentBytes();
      this.caBytes = 0;
    }
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    this.timing = false;
    this.retransmitNow = false;
    this.sndNxt = this.sndUna;
    this.retries++;
    this.rtt.backoff();
  }

  /**
   * Arms the persist timer when new data waits on a closed window with
   * nothing in flight to bring an ACK; disarms it otherwise.
   */
  armPersist(now: number): void {
    const waiting =
      this.sndMax === this.sndUna &&
      seqDiff(this.dataEnd, this.sndNxt) > 0 &&
      seqLe(this.edge, this.sndNxt);
    if (!waiting) this.persistDeadline = Infinity;
    else if (this.persistDeadline === Infinity) this.persistDeadline = now + this.rtt.rto;
  }

  /** Stops both timers (the connection is over). */
  stop(): void {
    this.rtoDeadline = Infinity;
    this.persistDeadline = Infinity;
  }
}
