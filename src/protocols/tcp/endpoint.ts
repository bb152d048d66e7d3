/**
 * One TCP connection as a pure state machine: RFC 9293 (read sections 3.3
 * to 3.10 first), with RFC 6298 (retransmission timer), RFC 7323 (window
 * scale, timestamps, PAWS), RFC 5681 and RFC 6582 (congestion control,
 * fast retransmit, NewReno), RFC 5961 (challenge ACKs for RST and SYN)
 * and RFC 1122 (delayed ACKs).
 *
 * ## Theory of operation
 *
 * The endpoint owns no socket, no timer and no clock. Every input carries
 * `now` (ms, any monotonic origin); every output goes through the `TcpSink`
 * the glue passes in, synchronously, before the input returns. Timers are
 * one number: `nextDeadline()`; the glue schedules one timer for it and
 * calls `onTimer(now)` when it fires (early or late calls are harmless),
 * and re-reads `nextDeadline()` after every call into the endpoint.
 *
 * The receiving half (receiver.ts) acknowledges, reassembles and delivers;
 * the sending half (sender.ts) buffers, paces by window and congestion
 * window, and retransmits; this file runs the RFC 9293 state machine and
 * the handshake (handshake.ts) and turns both halves' decisions into
 * segments. Half-close is the normal case: a FIN from the peer ends only
 * the peer's direction (`peerFin`), and `close()` ends only ours.
 *
 * ## The interface for the glue
 *
 * ```ts
 * const ep = new TcpEndpoint({ localPort, remotePort, iss, mtu }, sink);
 * // Passive open (the guest connects out): the guest's SYN creates it.
 * ep.receive(synSegment, now);          // -> CONNECT-PENDING, sends nothing
 * ...host socket connects...  ep.hostConnected(now);   // -> SYN-ACK
 * ...or fails...              ep.hostRefused(now);     // -> RST|ACK, freed('refused')
 *                             ep.hostUnreachable(now); // -> freed('unreachable'); glue sends ICMP
 * // Active open (port forwarding): ep.connect(now);   // -> SYN
 * // Then, for the life of the connection:
 * ep.receive(TcpSegment.parse(...), now);   // every segment of this 4-tuple
 * const room = ep.send(hostBytes, now);     // pause the host socket when room <= 0
 * ep.consumed(n, now);                      // the host socket took n delivered bytes
 * ep.close(now);                            // host socket ended: FIN after the data
 * ep.abort(now);                            // host socket errored: RST
 * ep.onTimer(now);                          // at ep.nextDeadline()
 * ```
 *
 * The sink receives: `segment(repr)` to encode and send to the peer now
 * (the repr object and its payload view are reused: valid only during the
 * call); `data(bytes)` in-order bytes for the host socket (a view of the
 * segment's buffer or of our reassembly copy: the glue must not reuse the
 * buffer it passed to `receive` while it still holds these); `peerFin()`
 * (shut the host socket's write side once delivered data is written);
 * `established()`; `sendRoom(room)` after `send` reported no room, once
 * ACKs freed half the send buffer (resume the host socket); `freed(reason)`
 * exactly once at the end (reasons: 'closed', 'peer-reset', 'aborted',
 * 'refused', 'unreachable', 'timeout', 'reopen'), after which the endpoint
 * ignores every input and the glue drops it. A peer reset is
 * `freed('peer-reset')`. 'reopen' means a new SYN arrived in TIME-WAIT:
 * the glue makes a fresh endpoint and feeds it the same segment.
 * Segments for no endpoint get `resetFor(segment)` (segment.ts).
 *
 * Calling into the endpoint from inside a sink callback is allowed: what
 * such a call makes sendable goes out before the outermost call returns.
 *
 * ## Memory
 *
 * The send buffer holds at most `sendBufferSize` plus the one chunk that
 * crossed it (`send` never refuses bytes the host socket already read;
 * it returns the room left, which goes negative). Received bytes are
 * never buffered in order: the window we advertise is `receiveBufferSize`
 * less what was delivered and not yet `consumed`, so the host socket's
 * write backlog is the receive buffer. Out-of-order bytes are copied into a
 * reassembly store capped at `reassemblyBytes` and `reassemblySegments`.
 *
 * ## Not done (said plainly)
 *
 * - SACK (RFC 2018) is half done: we offer it, and our pure ACKs carry SACK
 *   blocks for what we hold out of order (so the peer resends only the
 *   holes), but the peer's SACK blocks are not used (no RFC 6675
 *   scoreboard: our sender recovers by NewReno) and segments carrying
 *   data carry no blocks.
 * - Keepalive is off by default (RFC 1122); without it, and with no
 *   FIN-WAIT-2 timeout, an idle connection whose peer vanished stays until
 *   the glue aborts it. With `keepaliveIdleMs` set, it is found and freed.
 * - Urgent data (URG) is delivered inline as ordinary data.
 * - Segments without timestamps after timestamps were negotiated are
 *   accepted (RFC 7323 says they SHOULD be dropped; Linux accepts too).
 * - The minimum RTO defaults to 200 ms, not RFC 6298's 1 s (see rtt.ts).
 * - No path MTU discovery: the MSS comes from the configured MTU.
 * - TS.Recent is never invalidated after 24 idle days (RFC 7323 5.5), and
 *   RTT samples from timestamps are not weighted per window (Appendix G).
 * - The challenge ACK limit is per connection; RFC 5961 section 7 also
 *   suggests one for the whole stack, which is the glue's to add.
 */
import { canReceive, canSend, TcpState, tcpStateName } from './state.js';
import { Receiver, RcvResult, type ReceiverOutput } from './receiver.js';
import { AckResult, Sender } from './sender.js';
import {
  mssFromMtu,
  negotiate,
  peerSynOf,
  windowShiftFor,
  type Negotiated,
  type Offer,
  type PeerSyn,
} from './handshake.js';
import { TcpControl, resetFor, type TcpRepr, type TcpSegment } from './segment.js';
import { seq, seqAdd, seqGt, seqLe, seqLt, seqMax, seqMin, type Seq } from './seq.js';

export { TcpState, tcpStateName };

export interface TcpConfig {
  localPort: number;
  remotePort: number;
  /** Our initial sequence number; the glue draws it (RFC 6528). */
  iss: number;
  /** The link MTU our MSS derives from (default 1500). */
  mtu?: number;
  ipv6?: boolean;
  /** Send buffer cap in bytes (default 4 MiB). */
  sendBufferSize?: number;
  /** Receive window: bytes delivered and not yet consumed (default 4 MiB). */
  receiveBufferSize?: number;
  /** Out-of-order bytes held (default 1 MiB) and pieces (default 256). */
  reassemblyBytes?: number;
  reassemblySegments?: number;
  /** Offer window scaling (default true) and timestamps (default true). */
  windowScaling?: boolean;
  timestamps?: boolean;
  /** Offer SACK-permitted, and send SACK blocks when agreed (default true). */
  sack?: boolean;
  /** Added to `now` for our TSval (default 0; the glue may randomise it). */
  tsOffset?: number;
  initialRto?: number;
  minRto?: number;
  maxRto?: number;
  /** Retransmissions of one segment before giving up (default 12). */
  maxRetransmits?: number;
  /** Retransmissions of a SYN or SYN-ACK before giving up (default 6). */
  synRetries?: number;
  /** Longest delay of an ACK (default 40 ms; RFC 1122 allows 500). */
  delayedAckMs?: number;
  /** ACK a segment with PSH at once (default true). */
  ackOnPush?: boolean;
  /** How long TIME-WAIT lasts (default 1000 ms; we are a proxy, not a host). */
  timeWaitMs?: number;
  /** Challenge ACKs per second at most (RFC 5961 section 7; default 10). */
  challengeAckLimit?: number;
  /**
   * Keepalive (RFC 1122 4.2.3.6), off unless set: after this long without
   * hearing from the peer, with nothing outstanding, probe it.
   */
  keepaliveIdleMs?: number;
  /** Between unanswered probes (default 75 s). */
  keepaliveIntervalMs?: number;
  /** Unanswered probes before giving up with freed('timeout') (default 9). */
  keepaliveProbes?: number;
  /**
   * Payload bytes one new-data segment may carry when the link below cuts
   * segments to the MSS itself (virtio-net GSO); 0 (default) means the MSS.
   * It is also the SMSS of congestion control, and a retransmission resends
   * up to one such segment; the MSS governs every other window rule.
   */
  gsoBytes?: number;
  /**
   * Takes back each chunk given to `send` once the peer acknowledged all of
   * it (the glue reuses host read buffers); chunks of a connection that
   * ends with bytes unacknowledged are never handed back.
   */
  onSendRelease?: (chunk: Uint8Array) => void;
}

export type TcpFreeReason =
  'closed' | 'peer-reset' | 'aborted' | 'refused' | 'unreachable' | 'timeout' | 'reopen';

/** Where the endpoint's outputs go. Every method is called synchronously. */
export interface TcpSink {
  /** A segment for the peer; encode it before returning (it is reused). */
  segment(seg: Readonly<TcpRepr>): void;
  /** In-order bytes from the peer, for the application (host socket). */
  data(bytes: Uint8Array): void;
  /** The peer will send no more; our direction stays open. */
  peerFin(): void;
  /** The handshake completed. */
  established(): void;
  /** The send buffer, once full, has `room` bytes free again. */
  sendRoom(room: number): void;
  /** The connection is over; called exactly once. */
  freed(reason: TcpFreeReason): void;
  /** Every state change, in order (for logs and tests). */
  stateChange?(from: TcpState, to: TcpState): void;
}

/** Counters for the glue's drop and retransmission statistics. */
export interface TcpStats {
  segmentsIn: number;
  segmentsOut: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  probes: number;
  challengeAcks: number;
  outOfWindow: number;
  pawsDropped: number;
  outOfOrder: number;
  keepalives: number;
}

const EMPTY = new Uint8Array(0);

export class TcpEndpoint {
  private st: TcpState = TcpState.Closed;
  private started = false;
  private freedReason: TcpFreeReason | undefined;
  private readonly snd: Sender;
  private readonly rcv: Receiver;
  private readonly rcvOut: ReceiverOutput;
  private depth = 0;

  private readonly cfg: Required<TcpConfig>;
  private readonly ourMss: number;
  private readonly ourShift: number;
  private peer: PeerSyn | undefined;
  private tsOn = false;
  private sackOn = false;
  private readonly sackScratch: Seq[] = [];
  private synRetransmitted = false;
  private synSentAt = 0;
  private timeWaitDeadline = Infinity;
  private keepaliveDeadline = Infinity;
  private lastHeard = 0;
  private probesUnanswered = 0;
  private roomLow = false;
  private challenges = 0;
  private challengeSince = -Infinity;
  private readonly tx: TcpRepr;

  readonly stats: TcpStats = {
    segmentsIn: 0,
    segmentsOut: 0,
    retransmits: 0,
    fastRetransmits: 0,
    timeouts: 0,
    probes: 0,
    challengeAcks: 0,
    outOfWindow: 0,
    pawsDropped: 0,
    outOfOrder: 0,
    keepalives: 0,
  };

  constructor(
    config: TcpConfig,
    private readonly sink: TcpSink,
  ) {
    this.cfg = withDefaults(config);
    const c = this.cfg;
    this.ourMss = mssFromMtu(c.mtu, c.ipv6);
    this.ourShift = windowShiftFor(c.receiveBufferSize);
    this.snd = new Sender({
      bufferSize: c.sendBufferSize,
      initialRto: c.initialRto,
      minRto: c.minRto,
      maxRto: c.maxRto,
      gsoBytes: c.gsoBytes,
      onRelease: c.onSendRelease,
    });
    this.rcv = new Receiver({
      bufferSize: c.receiveBufferSize,
      reassemblyBytes: c.reassemblyBytes,
      reassemblySegments: c.reassemblySegments,
      delayedAckMs: c.delayedAckMs,
      ackOnPush: c.ackOnPush,
    });
    this.rcv.rcvMss = this.ourMss;
    this.rcvOut = { deliver: (bytes) => this.sink.data(bytes) };
    this.tx = {
      srcPort: c.localPort,
      dstPort: c.remotePort,
      seq: seq(0),
      ack: undefined,
      control: TcpControl.None,
      push: false,
      window: 0,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      tsVal: undefined,
      tsEcr: 0,
      sackBlocks: undefined,
      payload: EMPTY,
    };
  }

  // ---- What the glue and tests may read ----

  get state(): TcpState {
    return this.st;
  }

  /** Why the connection ended, or undefined while it lives. */
  get freed(): TcpFreeReason | undefined {
    return this.freedReason;
  }

  get iss(): Seq {
    return this.snd.iss;
  }

  get irs(): Seq {
    return this.rcv.irs;
  }

  get sndUna(): Seq {
    return this.snd.sndUna;
  }

  get sndNxt(): Seq {
    return this.snd.sndNxt;
  }

  /** The highest sequence number sent, plus one. */
  get sndMax(): Seq {
    return this.snd.sndMax;
  }

  /** SND.WND in bytes (scale applied). */
  get sndWnd(): number {
    return this.snd.sndWnd;
  }

  /** The right edge of the peer's advertised window. */
  get sndEdge(): Seq {
    return this.snd.edge;
  }

  get rcvNxt(): Seq {
    return this.rcv.rcvNxt;
  }

  /** RCV.WND: bytes we accept beyond RCV.NXT. */
  get rcvWnd(): number {
    return this.rcv.rcvWnd;
  }

  /** The highest right edge we advertised. */
  get rcvAdv(): Seq {
    return this.rcv.rcvAdv;
  }

  get cwnd(): number {
    return this.snd.cwnd;
  }

  get rto(): number {
    return this.snd.rtt.rto;
  }

  /** Payload bytes per segment we send. */
  get mss(): number {
    return this.snd.mss;
  }

  /** Bytes `send` may still take before the host socket should pause. */
  get sendRoom(): number {
    return this.snd.room;
  }

  /** Bytes in the send buffer (unsent plus unacknowledged). */
  get sendBuffered(): number {
    return this.snd.buf.length;
  }

  /** Bytes delivered through `data` and not yet `consumed`. */
  get unconsumed(): number {
    return this.rcv.unconsumed;
  }

  /** Out-of-order bytes held. */
  get reassembling(): number {
    return this.rcv.ooo.bytes;
  }

  /** When `onTimer` is next due (ms), or undefined if nothing is pending. */
  nextDeadline(): number | undefined {
    if (this.freedReason !== undefined) return undefined;
    const d = Math.min(
      this.snd.rtoDeadline,
      this.snd.persistDeadline,
      this.rcv.delackDeadline,
      this.timeWaitDeadline,
      this.keepaliveDeadline,
    );
    return d === Infinity ? undefined : d;
  }

  // ---- Inputs ----

  /** A segment from the peer for this connection. */
  receive(seg: TcpSegment, now: number): void {
    if (this.freedReason !== undefined) return;
    this.stats.segmentsIn++;
    this.lastHeard = now;
    this.probesUnanswered = 0;
    this.depth++;
    try {
      this.dispatch(seg, now);
    } finally {
      this.leave(now);
    }
  }

  /** Passive open: the host socket connected; answer the SYN. */
  hostConnected(now: number): void {
    if (this.freedReason !== undefined) return;
    this.expect(TcpState.ConnectPending, 'hostConnected');
    this.depth++;
    try {
      const n = negotiate(this.offer(), this.peer!);
      this.apply(n);
      this.snd.init(seq(this.cfg.iss));
      this.setState(TcpState.SynReceived);
      this.sendSyn(now);
    } finally {
      this.leave(now);
    }
  }

  /** Passive open: the host refused; the peer gets RST|ACK. */
  hostRefused(now: number): void {
    void now;
    if (this.freedReason !== undefined) return;
    this.expect(TcpState.ConnectPending, 'hostRefused');
    this.sendRst(seq(0), seqAdd(this.rcv.irs, 1));
    this.free('refused');
  }

  /** Passive open: the host is unreachable; the glue answers with ICMP. */
  hostUnreachable(now: number): void {
    void now;
    if (this.freedReason !== undefined) return;
    this.expect(TcpState.ConnectPending, 'hostUnreachable');
    this.free('unreachable');
  }

  /** Active open: send a SYN. */
  connect(now: number): void {
    if (this.started || this.freedReason !== undefined) {
      throw new Error('tcp: connect on an endpoint already in use');
    }
    this.started = true;
    this.depth++;
    try {
      this.snd.init(seq(this.cfg.iss));
      this.rcv.rcvWscale = this.cfg.windowScaling ? this.ourShift : 0;
      this.setState(TcpState.SynSent);
      this.sendSyn(now);
    } finally {
      this.leave(now);
    }
  }

  /**
   * Queues application bytes for the peer, by reference (send-buffer.ts):
   * the caller must not modify `data` afterwards. Returns the room left:
   * at or below zero, pause the source until `sendRoom` is called.
   */
  send(data: Uint8Array, now: number): number {
    if (this.freedReason !== undefined) return 0;
    if (!canSend(this.st) || this.snd.finQueued || !this.started) {
      throw new Error(`tcp: send in ${tcpStateName(this.st)} after close or before open`);
    }
    this.snd.buf.append(data);
    if (this.snd.room <= 0) this.roomLow = true;
    this.depth++;
    this.leave(now);
    return this.snd.room;
  }

  /** Half-close: a FIN follows the queued data; receiving continues. */
  close(now: number): void {
    if (this.freedReason !== undefined || this.snd.finQueued) return;
    if (!this.started) {
      this.free('closed');
      return;
    }
    this.depth++;
    try {
      this.snd.finQueued = true;
      if (this.st === TcpState.Established) this.setState(TcpState.FinWait1);
      else if (this.st === TcpState.CloseWait) this.setState(TcpState.LastAck);
    } finally {
      this.leave(now);
    }
  }

  /** Abort: RST to the peer where one is due, then freed('aborted'). */
  abort(now: number): void {
    void now;
    if (this.freedReason !== undefined) return;
    switch (this.st) {
      case TcpState.ConnectPending:
        this.sendRst(seq(0), seqAdd(this.rcv.irs, 1));
        break;
      case TcpState.SynReceived:
      case TcpState.Established:
      case TcpState.FinWait1:
      case TcpState.FinWait2:
      case TcpState.CloseWait:
        this.sendRst(this.snd.sndMax, this.rcv.rcvNxt);
        break;
      default:
        break; // RFC 9293 3.10.5: nothing to say in the other states
    }
    this.free('aborted');
  }

  /** The application took `n` of the delivered bytes: the window reopens. */
  consumed(n: number, now: number): void {
    if (this.freedReason !== undefined) return;
    this.rcv.consume(n);
    this.depth++;
    this.leave(now);
  }

  /** Runs whatever timers are due at `now`. */
  onTimer(now: number): void {
    if (this.freedReason !== undefined) return;
    this.depth++;
    try {
      if (this.timeWaitDeadline <= now) {
        this.free('closed');
        return;
      }
      if (this.snd.rtoDeadline <= now) this.onRetransmitTimer(now);
      if (this.freedReason === undefined && this.snd.persistDeadline <= now) this.onPersist(now);
      if (this.freedReason === undefined && this.keepaliveDeadline <= now) this.onKeepalive(now);
      if (this.rcv.delackDeadline <= now) {
        this.rcv.delackDeadline = Infinity;
        this.rcv.ackNow = true;
      }
    } finally {
      this.leave(now);
    }
  }

  // ---- Segment arrival (RFC 9293 3.10.7) ----

  private dispatch(seg: TcpSegment, now: number): void {
    switch (this.st) {
      case TcpState.Closed:
        return this.onFirstSegment(seg);
      case TcpState.ConnectPending:
        return this.onPendingSegment(seg);
      case TcpState.SynSent:
        return this.onSynSentSegment(seg, now);
      default:
        return this.onSynchronized(seg, now);
    }
  }

  /** A fresh endpoint takes a SYN (passive open); anything else is refused. */
  private onFirstSegment(seg: TcpSegment): void {
    if (this.started || seg.control !== TcpControl.Syn || seg.hasAck) {
      const reply = resetFor(seg);
      if (reply) this.emit(reply);
      this.free('refused');
      return;
    }
    this.started = true;
    this.takeSyn(seg);
    this.setState(TcpState.ConnectPending);
  }

  /** While the host socket connects, a repeated SYN changes nothing. */
  private onPendingSegment(seg: TcpSegment): void {
    if (seg.control === TcpControl.Rst) {
      if (seg.seq === seqAdd(this.rcv.irs, 1)) this.free('peer-reset');
      return;
    }
    if (seg.control === TcpControl.Syn && !seg.hasAck && seg.seq !== this.rcv.irs) {
      this.takeSyn(seg); // the peer started over with a new ISN
    }
  }

  private takeSyn(seg: TcpSegment): void {
    this.peer = peerSynOf(seg);
    this.rcv.init(seg.seq);
    if (seg.tsVal !== undefined) {
      this.rcv.tsRecent = seg.tsVal;
      this.rcv.tsRecentValid = true;
    }
  }

  /** RFC 9293 3.10.7.3. */
  private onSynSentSegment(seg: TcpSegment, now: number): void {
    const ack = seg.ack;
    const isRst = seg.control === TcpControl.Rst;
    if (ack !== undefined && (seqLe(ack, this.snd.iss) || seqGt(ack, this.snd.sndMax))) {
      if (!isRst) this.sendRst(ack, undefined);
      return;
    }
    if (isRst) {
      if (ack !== undefined) this.free('refused');
      return;
    }
    if (seg.control !== TcpControl.Syn) return;

    this.takeSyn(seg);
    const n = negotiate(this.offer(), this.peer!);
    this.apply(n);
    if (ack === undefined) {
      // Simultaneous open: both sent SYNs; answer with our SYN again, acked.
      this.setState(TcpState.SynReceived);
      this.sendSyn(now);
      return;
    }
    this.synAcked(ack, now, this.tsOn ? seg.tsEcr : undefined);
    this.snd.initWindow(seg.window, seg.seq, ack);
    this.rcv.ackNow = true;
    this.becomeEstablished();
    if (this.freedReason === undefined && seg.payloadLength > 0) this.text(seg, now);
  }

  /** RFC 9293 3.10.7.4, for every state past SYN-SENT. */
  private onSynchronized(seg: TcpSegment, now: number): void {
    const control = seg.control;
    if (
      this.st === TcpState.TimeWait &&
      control === TcpControl.Syn &&
      !seg.hasAck &&
      seqGt(seg.seq, this.rcv.rcvNxt)
    ) {
      this.free('reopen'); // RFC 9293 3.10.7.4 / RFC 6191: a new incarnation
      return;
    }
    if (!this.checkSequence(seg, now)) return;

    if (control === TcpControl.Rst) {
      // RFC 5961 3.2: only an exact RST resets; one merely in the window is challenged.
      if (seg.seq === this.rcv.rcvNxt) this.free('peer-reset');
      else this.challengeAck(now);
      return;
    }
    if (control === TcpControl.Syn) {
      this.challengeAck(now); // RFC 5961 4.2: any SYN here is challenged
      return;
    }
    if (!seg.hasAck || !this.processAck(seg, now)) return;
    if (this.freedReason !== undefined) return;
    if (canReceive(this.st) && (seg.payloadLength > 0 || control === TcpControl.Fin)) {
      this.text(seg, now);
    }
  }

  /** PAWS and the acceptability test; false drops the segment. */
  private checkSequence(seg: TcpSegment, now: number): boolean {
    const isRst = seg.control === TcpControl.Rst;
    const tsVal = seg.tsVal;
    const rcv = this.rcv;
    if (this.tsOn && !isRst && tsVal !== undefined && rcv.tsRecentValid) {
      if (seqLt(seq(tsVal), seq(rcv.tsRecent))) {
        this.stats.pawsDropped++;
        rcv.ackNow = true;
        return false;
      }
    }
    const bareFin = seg.control === TcpControl.Fin && seg.payloadLength === 0;
    if (!rcv.acceptable(seg.seq, seg.seqLength, bareFin)) {
      this.stats.outOfWindow++;
      if (!isRst) rcv.ackNow = true;
      if (this.st === TcpState.TimeWait && seg.control === TcpControl.Fin) {
        this.timeWaitDeadline = now + this.cfg.timeWaitMs; // the peer lost our ACK
      }
      return false;
    }
    if (this.tsOn && tsVal !== undefined) rcv.noteTimestamp(seg.seq, tsVal);
    return true;
  }

  /** Step 5, the ACK field; false drops the rest of the segment. */
  private processAck(seg: TcpSegment, now: number): boolean {
    const ack = seg.ack!;
    const snd = this.snd;
    if (this.st === TcpState.SynReceived) {
      if (!(seqGt(ack, snd.sndUna) && seqLe(ack, snd.sndMax))) {
        this.sendRst(ack, undefined);
        return false;
      }
      this.synAcked(ack, now, this.tsOn ? seg.tsEcr : undefined);
      snd.initWindow(seg.window * 2 ** snd.sndWscale, seg.seq, ack);
      this.becomeEstablished();
      return this.freedReason === undefined;
    }
    // RFC 5961 5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.MAX, else ACK and drop.
    if (seqGt(ack, snd.sndMax) || seqLt(ack, seqAdd(snd.sndUna, -snd.maxSndWnd))) {
      this.rcv.ackNow = true;
      return false;
    }
    const tsEcr = this.tsOn && seg.hasTimestamps ? seg.tsEcr : undefined;
    const r = snd.onAck(ack, seg.seq, seg.window, seg.seqLength, tsEcr, now, this.tsNow(now));
    if (r & AckResult.FinAcked) return this.ourFinAcked(now);
    return true;
  }

  private ourFinAcked(now: number): boolean {
    switch (this.st) {
      case TcpState.FinWait1:
        this.setState(TcpState.FinWait2);
        return true;
      case TcpState.Closing:
        this.enterTimeWait(now);
        return true;
      case TcpState.LastAck:
        this.free('closed');
        return false;
      default:
        return true;
    }
  }

  /** Steps 7 and 8: the segment's text and FIN. */
  private text(seg: TcpSegment, now: number): void {
    const fin = seg.control === TcpControl.Fin;
    const before = this.rcv.rcvNxt;
    const r = this.rcv.onText(seg.seq, seg.payload, fin, seg.push, now, this.rcvOut);
    if (this.rcv.rcvNxt === before && seg.seq !== before) this.stats.outOfOrder++;
    if (this.freedReason !== undefined || !(r & RcvResult.Fin)) return;
    switch (this.st) {
      case TcpState.Established:
        this.setState(TcpState.CloseWait);
        break;
      case TcpState.FinWait1:
        this.setState(TcpState.Closing);
        break;
      case TcpState.FinWait2:
        this.enterTimeWait(now);
        break;
      default:
        break;
    }
    this.sink.peerFin();
  }

  private synAcked(ack: Seq, now: number, tsEcr: number | undefined): void {
    const snd = this.snd;
    snd.sndUna = ack;
    if (seqLt(snd.sndNxt, ack)) snd.sndNxt = ack;
    snd.rtoDeadline = Infinity;
    snd.retries = 0;
    if (tsEcr !== undefined && tsEcr !== 0) snd.rtt.sample(this.tsNow(now) - tsEcr);
    else if (!this.synRetransmitted) snd.rtt.sample(now - this.synSentAt);
    if (this.synRetransmitted) snd.rtt.resetAfterSynTimeout();
  }

  private becomeEstablished(): void {
    this.setState(TcpState.Established);
    if (this.snd.finQueued) this.setState(TcpState.FinWait1);
    this.sink.established();
  }

  private enterTimeWait(now: number): void {
    this.setState(TcpState.TimeWait);
    this.timeWaitDeadline = now + this.cfg.timeWaitMs;
    this.snd.stop();
  }

  private challengeAck(now: number): void {
    if (now - this.challengeSince >= 1000) {
      this.challengeSince = now;
      this.challenges = 0;
    }
    if (this.challenges >= this.cfg.challengeAckLimit) return;
    this.challenges++;
    this.stats.challengeAcks++;
    this.rcv.ackNow = true;
  }

  // ---- Timers ----

  private onRetransmitTimer(now: number): void {
    const snd = this.snd;
    if (snd.sndUna === snd.sndMax) {
      snd.rtoDeadline = Infinity; // nothing outstanding: never resend acked data
      return;
    }
    const handshake = this.st === TcpState.SynSent || this.st === TcpState.SynReceived;
    if (snd.retries >= (handshake ? this.cfg.synRetries : this.cfg.maxRetransmits)) {
      if (this.st !== TcpState.SynSent) this.sendRst(snd.sndMax, this.rcv.rcvNxt);
      this.free('timeout');
      return;
    }
    this.stats.timeouts++;
    if (handshake) {
      snd.retries++;
      snd.rtt.backoff();
      snd.rtoDeadline = now + snd.rtt.rto;
      this.synRetransmitted = true;
      this.sendSyn(now);
      return;
    }
    snd.onTimeout();
    snd.rtoDeadline = now + snd.rtt.rto;
    if (this.tsOn) snd.echoFloor = this.tsNow(now);
    if (snd.prepareRetransmit()) this.emitPrepared(now);
  }

  private onPersist(now: number): void {
    this.snd.persistDeadline = Infinity;
    if (!this.snd.prepareProbe()) return;
    this.stats.probes++;
    this.emitPrepared(now);
  }

  /** A keepalive probe: SEQ = SND.NXT - 1, which the peer must answer. */
  private onKeepalive(now: number): void {
    this.keepaliveDeadline = Infinity;
    if (this.probesUnanswered >= this.cfg.keepaliveProbes) {
      this.sendRst(this.snd.sndMax, this.rcv.rcvNxt);
      this.free('timeout');
      return;
    }
    this.probesUnanswered++;
    this.stats.keepalives++;
    const tx = this.fillAck(now, seqAdd(this.snd.sndNxt, -1));
    tx.control = TcpControl.None;
    tx.push = false;
    tx.payload = EMPTY;
    this.flush();
  }

  /** Keepalive runs only when idle: no data outstanding or waiting. */
  private armKeepalive(): void {
    const idle = this.cfg.keepaliveIdleMs;
    const st = this.st;
    const open =
      st === TcpState.Established ||
      st === TcpState.FinWait1 ||
      st === TcpState.FinWait2 ||
      st === TcpState.CloseWait;
    if (idle <= 0 || !open || this.snd.sndMax !== this.snd.sndUna || this.snd.unsent > 0) {
      this.keepaliveDeadline = Infinity;
      return;
    }
    const n = this.probesUnanswered;
    this.keepaliveDeadline = this.lastHeard + idle + n * this.cfg.keepaliveIntervalMs;
  }

  // ---- Output ----

  /** Runs after every input: sends what the state now allows. */
  private leave(now: number): void {
    if (this.depth > 1 || this.freedReason !== undefined) {
      this.depth--;
      return;
    }
    try {
      this.transmit(now);
    } finally {
      this.depth--;
    }
    if (
      this.roomLow &&
      this.freedReason === undefined &&
      this.snd.room >= this.snd.bufferSize / 2
    ) {
      this.roomLow = false;
      this.sink.sendRoom(this.snd.room);
    }
  }

  private transmit(now: number): void {
    const st = this.st;
    if (st === TcpState.SynReceived) {
      if (this.rcv.ackNow) this.sendSyn(now); // a repeated SYN or a challenge
      return;
    }
    if (st === TcpState.Closed || st === TcpState.ConnectPending || st === TcpState.SynSent) {
      return;
    }
    const snd = this.snd;
    if (snd.retransmitNow) {
      snd.retransmitNow = false;
      this.stats.fastRetransmits++;
      if (snd.prepareRetransmit()) this.emitPrepared(now);
    }
    while (this.freedReason === undefined && snd.prepareNew()) this.emitPrepared(now);
    if (this.freedReason !== undefined) return;
    if (this.rcv.ackNow) this.emitAck(now);
    snd.armPersist(now);
    this.armKeepalive();
  }

  /** Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), first or again. */
  private sendSyn(now: number): void {
    const passive = this.st === TcpState.SynReceived && this.peer !== undefined;
    const tx = this.tx;
    tx.seq = this.snd.iss;
    tx.ack = passive ? this.rcv.rcvNxt : undefined;
    tx.control = TcpControl.Syn;
    tx.push = false;
    tx.window = this.rcv.advertiseSyn();
    tx.mss = this.ourMss;
    tx.windowScale = this.offersScale(passive) ? this.rcv.rcvWscale : undefined;
    tx.tsVal = this.offersTimestamps(passive) ? this.tsNow(now) : undefined;
    tx.tsEcr = passive && this.tsOn ? this.rcv.tsRecent : 0;
    tx.sackPermitted = passive ? this.sackOn : this.cfg.sack;
    tx.payload = EMPTY;
    if (passive) this.rcv.onAckSent();
    const snd = this.snd;
    if (snd.sndMax === snd.iss) {
      snd.sndNxt = snd.sndMax = seqAdd(snd.iss, 1);
      this.synSentAt = now;
    } else {
      this.stats.retransmits++;
    }
    if (snd.rtoDeadline === Infinity) snd.rtoDeadline = now + snd.rtt.rto;
    this.flush();
    tx.mss = undefined;
    tx.windowScale = undefined;
    tx.sackPermitted = false;
  }

  private offersScale(passive: boolean): boolean {
    if (!passive) return this.cfg.windowScaling;
    return this.cfg.windowScaling && this.peer?.windowScale !== undefined;
  }

  private offersTimestamps(passive: boolean): boolean {
    return passive ? this.tsOn : this.cfg.timestamps;
  }

  /** Sends the segment the sender prepared, with ACK, window and timestamps. */
  private emitPrepared(now: number): void {
    const snd = this.snd;
    if (seqLt(snd.outSeq, snd.sndMax)) this.stats.retransmits++;
    const tx = this.fillAck(now, snd.outSeq);
    tx.control = snd.outFin ? TcpControl.Fin : TcpControl.None;
    tx.push = snd.outPush;
    tx.payload = snd.outPayload;
    snd.commit(now, this.tsOn);
    this.flush();
  }

  /**
   * A bare ACK carries SND.MAX, not SND.NXT: after a timeout SND.NXT has
   * gone back, and a sequence number the peer has already passed would make
   * it answer our ACK with its own, forever (BSD does the same). Past a
   * closed window (a probe is out) it carries the window's edge instead.
   */
  private emitAck(now: number): void {
    const snd = this.snd;
    const s = seqMax(snd.sndUna, seqMin(snd.sndMax, snd.edge));
    const tx = this.fillAck(now, s);
    tx.control = TcpControl.None;
    tx.push = false;
    tx.payload = EMPTY;
    if (this.sackOn && !this.rcv.ooo.isEmpty) {
      this.rcv.sackBlocks(this.sackScratch, this.tsOn ? 3 : 4);
      tx.sackBlocks = this.sackScratch;
    }
    this.flush();
    tx.sackBlocks = undefined;
  }

  private fillAck(now: number, s: Seq): TcpRepr {
    const tx = this.tx;
    tx.seq = s;
    tx.ack = this.rcv.rcvNxt;
    tx.window = this.rcv.advertise();
    tx.tsVal = this.tsOn ? this.tsNow(now) : undefined;
    tx.tsEcr = this.tsOn ? this.rcv.tsRecent : 0;
    this.rcv.onAckSent();
    return tx;
  }

  private sendRst(s: Seq, ack: Seq | undefined): void {
    const tx = this.tx;
    tx.seq = s;
    tx.ack = ack;
    tx.control = TcpControl.Rst;
    tx.push = false;
    tx.window = 0;
    tx.tsVal = undefined;
    tx.tsEcr = 0;
    tx.payload = EMPTY;
    this.flush();
  }

  private emit(r: TcpRepr): void {
    this.stats.segmentsOut++;
    this.sink.segment(r);
  }

  private flush(): void {
    this.stats.segmentsOut++;
    this.sink.segment(this.tx);
  }

  // ---- Bookkeeping ----

  private offer(): Offer {
    return {
      windowScaling: this.cfg.windowScaling,
      timestamps: this.cfg.timestamps,
      sack: this.cfg.sack,
      mss: this.ourMss,
      ipv6: this.cfg.ipv6,
      rcvShift: this.ourShift,
    };
  }

  private apply(n: Negotiated): void {
    this.rcv.rcvWscale = n.rcvWscale;
    this.snd.sndWscale = n.sndWscale;
    this.tsOn = n.timestamps;
    this.sackOn = n.sack;
    this.snd.setMss(n.sndMss);
    if (!n.timestamps) this.rcv.tsRecentValid = false;
  }

  private tsNow(now: number): number {
    return (Math.floor(now) + this.cfg.tsOffset) >>> 0;
  }

  private setState(to: TcpState): void {
    const from = this.st;
    if (from === to) return;
    this.st = to;
    this.sink.stateChange?.(from, to);
  }

  private expect(s: TcpState, call: string): void {
    if (this.st !== s) throw new Error(`tcp: ${call} in ${tcpStateName(this.st)}`);
  }

  private free(reason: TcpFreeReason): void {
    if (this.freedReason !== undefined) return;
    this.freedReason = reason;
    this.snd.stop();
    this.snd.buf.release(this.snd.buf.length);
    this.rcv.clear();
    this.timeWaitDeadline = Infinity;
    this.keepaliveDeadline = Infinity;
    this.setState(TcpState.Closed);
    this.sink.freed(reason);
  }
}

function withDefaults(c: TcpConfig): Required<TcpConfig> {
  return {
    localPort: c.localPort,
    remotePort: c.remotePort,
    iss: c.iss >>> 0,
    mtu: c.mtu ?? 1500,
    ipv6: c.ipv6 ?? false,
    sendBufferSize: c.sendBufferSize ?? 4 * 1024 * 1024,
    receiveBufferSize: c.receiveBufferSize ?? 4 * 1024 * 1024,
    reassemblyBytes: c.reassemblyBytes ?? 1024 * 1024,
    reassemblySegments: c.reassemblySegments ?? 256,
    windowScaling: c.windowScaling ?? true,
    timestamps: c.timestamps ?? true,
    sack: c.sack ?? true,
    tsOffset: c.tsOffset ?? 0,
    initialRto: c.initialRto ?? 1000,
    minRto: c.minRto ?? 200,
    maxRto: c.maxRto ?? 60000,
    maxRetransmits: c.maxRetransmits ?? 12,
    synRetries: c.synRetries ?? 6,
    delayedAckMs: c.delayedAckMs ?? 40,
    ackOnPush: c.ackOnPush ?? true,
    timeWaitMs: c.timeWaitMs ?? 1000,
    challengeAckLimit: c.challengeAckLimit ?? 10,
    keepaliveIdleMs: c.keepaliveIdleMs ?? 0,
    keepaliveIntervalMs: c.keepaliveIntervalMs ?? 75_000,
    keepaliveProbes: c.keepaliveProbes ?? 9,
    gsoBytes: c.gsoBytes ?? 0,
    onSendRelease: c.onSendRelease ?? (() => {}),
  };
}
