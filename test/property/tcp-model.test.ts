// Model-based test (fc.commands) of one established TCP connection: a
// scripted peer and an application drive the endpoint, and after every
// command the endpoint must agree with a small reference model of RFC 9293:
// its state, RCV.NXT, SND.UNA, what it delivered, what it buffers, and
// that nothing it sends lies past the peer's window or re-sends acked data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TcpEndpoint, TcpState, tcpStateName } from '../../src/protocols/tcp/endpoint.js';
import { TcpControl, type TcpRepr } from '../../src/protocols/tcp/segment.js';
import { seq, seqAdd, seqDiff, seqGe, seqLe, type Seq } from '../../src/protocols/tcp/seq.js';
import { Peer, Recorder, config } from '../protocols/tcp/harness.js';
import { numRuns } from './runs.js';

const TIME_WAIT = 2000;

/** How often each command really ran: the test must not pass vacuously. */
const ran = new Map<string, number>();
function count(name: string): void {
  ran.set(name, (ran.get(name) ?? 0) + 1);
}

interface Model {
  state: TcpState;
  /** Bytes the peer sent in order, and whether its FIN followed. */
  peerSent: number;
  peerFin: boolean;
  /** Bytes the application queued, and how many the peer acknowledged. */
  appWritten: number;
  acked: number;
  appClosed: boolean;
  finAcked: boolean;
  unconsumed: number;
  /** The window the peer last advertised, in bytes. */
  peerWindow: number;
}

/** The endpoint, its recorder, the scripted peer, and what went on the wire. */
class Real {
  readonly rec = new Recorder();
  readonly peer = new Peer(7000);
  readonly ep: TcpEndpoint;
  now = 0;
  /** One past the highest data sequence number the endpoint sent. */
  sentEnd: Seq;
  finSent = false;
  /** The right edge of the window the peer last advertised. */
  edge: Seq = seq(0);

  /** Sends a segment from the scripted peer, noting the window it offers. */
  fromPeer(opts: Parameters<Peer['seg']>[0], now = this.now): void {
    const s = this.peer.seg(opts);
    if (s.ack !== undefined) this.edge = seqAdd(s.ack, s.window);
    this.ep.receive(s, now);
  }

  constructor(iss: number) {
    this.ep = new TcpEndpoint(
      config({
        iss,
        timeWaitMs: TIME_WAIT,
        sendBufferSize: 20_000,
        receiveBufferSize: 30_000,
        maxRetransmits: 1000,
        windowScaling: false,
      }),
      this.rec,
    );
    this.peer.window = 30_000;
    this.ep.receive(this.peer.seg({ control: TcpControl.Syn, ack: null, mss: 1000 }), 0);
    this.ep.hostConnected(0);
    this.peer.ackNo = seqAdd(seq(iss), 1);
    this.fromPeer({}, 1);
    this.sentEnd = seqAdd(seq(iss), 1);
    this.drain();
  }

  /** Checks the segments sent since the last call and notes how far data went. */
  drain(): TcpRepr[] {
    const out = this.rec.take();
    for (const s of out) {
      const len = s.payload.length;
      if (len > 0 || s.control === TcpControl.Fin) {
        assert.ok(seqGe(s.seq, this.ep.sndUna), `resent acknowledged data at ${s.seq}`);
      }
      const end = seqAdd(s.seq, len);
      // Nothing past the window the peer offered last (a zero-window probe may add one byte).
      if (len > 0)
        assert.ok(
          seqLe(end, seqAdd(this.edge, len === 1 ? 1 : 0)),
          `sent to ${end}, edge ${this.edge}`,
        );
      if (len > 0 && seqDiff(end, this.sentEnd) > 0) this.sentEnd = end;
      if (s.control === TcpControl.Fin) this.finSent = true;
    }
    return out;
  }
}

function stream(i: number): number {
  return (i * 131 + (i >> 7)) & 0xff;
}

function payload(from: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => stream(from + i));
}

function agree(m: Model, r: Real): void {
  const ep = r.ep;
  r.drain();
  assert.equal(tcpStateName(ep.state), tcpStateName(m.state), 'state');
  if (m.state === TcpState.Closed) return;
  assert.equal(
    ep.rcvNxt,
    seqAdd(r.peer.iss as Seq, 1 + m.peerSent + (m.peerFin ? 1 : 0)),
    'RCV.NXT',
  );
  assert.equal(r.rec.received.length, m.peerSent, 'bytes delivered');
  assert.equal(ep.unconsumed, m.unconsumed, 'unconsumed');
  const una = seqAdd(ep.iss, 1 + m.acked + (m.finAcked ? 1 : 0));
  assert.equal(ep.sndUna, una, 'SND.UNA');
  assert.equal(ep.sendBuffered, m.appWritten - m.acked, 'send buffer');
}

const canReceive = (m: Model): boolean =>
  !m.peerFin &&
  (m.state === TcpState.Established ||
    m.state === TcpState.FinWait1 ||
    m.state === TcpState.FinWait2);

const alive = (m: Model): boolean => m.state !== TcpState.Closed && m.state !== TcpState.TimeWait;

class PeerData implements fc.Command<Model, Real> {
  constructor(
    readonly n: number,
    readonly push: boolean,
  ) {}
  check(m: Model): boolean {
    return canReceive(m);
  }
  run(m: Model, r: Real): void {
    count('PeerData');
    const n = Math.min(this.n, r.ep.rcvWnd);
    r.peer.ackNo = seqAdd(r.ep.iss, 1 + m.acked + (m.finAcked ? 1 : 0));
    r.fromPeer({ payload: payload(m.peerSent, n), push: this.push, window: m.peerWindow });
    const first = m.peerSent;
    m.peerSent += n;
    m.unconsumed += n;
    agree(m, r);
    assert.deepEqual(r.rec.received.slice(first), [...payload(first, n)]);
  }
  toString(): string {
    return `PeerData(${this.n}${this.push ? ', push' : ''})`;
  }
}

/** Two in-order chunks delivered second-first: held, then both in order. */
class PeerReordered implements fc.Command<Model, Real> {
  constructor(readonly n: number) {}
  check(m: Model): boolean {
    return canReceive(m);
  }
  run(m: Model, r: Real): void {
    count('PeerReordered');
    const n = Math.min(this.n, Math.floor(r.ep.rcvWnd / 2));
    if (n === 0) return;
    const a = r.peer.seg({ payload: payload(m.peerSent, n), window: m.peerWindow });
    const b = r.peer.seg({ payload: payload(m.peerSent + n, n), window: m.peerWindow });
    r.ep.receive(b, r.now);
    assert.equal(r.rec.received.length, m.peerSent, 'nothing delivered out of order');
    assert.ok(
      r.drain().some((s) => s.ack === seqAdd(r.peer.iss as Seq, 1 + m.peerSent)),
      'dup ACK',
    );
    r.ep.receive(a, r.now);
    m.peerSent += 2 * n;
    m.unconsumed += 2 * n;
    agree(m, r);
  }
  toString(): string {
    return `PeerReordered(${this.n})`;
  }
}

/** An old segment again: acknowledged, never delivered twice. */
class PeerDuplicate implements fc.Command<Model, Real> {
  check(m: Model): boolean {
    return alive(m) && m.peerSent > 0;
  }
  run(m: Model, r: Real): void {
    count('PeerDuplicate');
    const n = Math.min(m.peerSent, 10);
    const start = seqAdd(r.peer.iss as Seq, 1 + m.peerSent - n);
    r.fromPeer({ seq: start, payload: payload(m.peerSent - n, n), window: m.peerWindow });
    agree(m, r);
  }
  toString(): string {
    return 'PeerDuplicate';
  }
}

class PeerAck implements fc.Command<Model, Real> {
  constructor(
    readonly n: number,
    readonly window: number,
  ) {}
  check(m: Model): boolean {
    return alive(m) || m.state === TcpState.TimeWait;
  }
  run(m: Model, r: Real): void {
    count('PeerAck');
    const sent = seqDiff(r.sentEnd, seqAdd(r.ep.iss, 1));
    const n = Math.min(this.n, sent - m.acked);
    m.acked += n;
    const allData = m.acked === m.appWritten && m.appClosed;
    const ackFin = r.finSent && allData && !m.finAcked;
    r.peer.ackNo = seqAdd(r.ep.iss, 1 + m.acked + (ackFin || m.finAcked ? 1 : 0));
    m.peerWindow = this.window;
    r.fromPeer({ window: this.window });
    if (ackFin) {
      m.finAcked = true;
      if (m.state === TcpState.FinWait1) m.state = TcpState.FinWait2;
      else if (m.state === TcpState.Closing) m.state = TcpState.TimeWait;
      else if (m.state === TcpState.LastAck) m.state = TcpState.Closed;
    }
    agree(m, r);
  }
  toString(): string {
    return `PeerAck(${this.n}, wnd ${this.window})`;
  }
}

class PeerFin implements fc.Command<Model, Real> {
  check(m: Model): boolean {
    return canReceive(m);
  }
  run(m: Model, r: Real): void {
    count('PeerFin');
    r.fromPeer({ control: TcpControl.Fin, window: m.peerWindow });
    m.peerFin = true;
    if (m.state === TcpState.Established) m.state = TcpState.CloseWait;
    else if (m.state === TcpState.FinWait1) m.state = TcpState.Closing;
    else if (m.state === TcpState.FinWait2) m.state = TcpState.TimeWait;
    agree(m, r);
    assert.equal(r.rec.fins, 1);
  }
  toString(): string {
    return 'PeerFin';
  }
}

class AppSend implements fc.Command<Model, Real> {
  constructor(readonly n: number) {}
  check(m: Model): boolean {
    return !m.appClosed && (m.state === TcpState.Established || m.state === TcpState.CloseWait);
  }
  run(m: Model, r: Real): void {
    count('AppSend');
    const room = r.ep.send(new Uint8Array(this.n), r.now);
    m.appWritten += this.n;
    assert.equal(room, 20_000 - (m.appWritten - m.acked), 'room');
    agree(m, r);
  }
  toString(): string {
    return `AppSend(${this.n})`;
  }
}

class AppConsume implements fc.Command<Model, Real> {
  constructor(readonly n: number) {}
  check(m: Model): boolean {
    return m.unconsumed > 0 && m.state !== TcpState.Closed;
  }
  run(m: Model, r: Real): void {
    count('AppConsume');
    const n = Math.min(this.n, m.unconsumed);
    r.ep.consumed(n, r.now);
    m.unconsumed -= n;
    agree(m, r);
  }
  toString(): string {
    return `AppConsume(${this.n})`;
  }
}

class AppClose implements fc.Command<Model, Real> {
  check(m: Model): boolean {
    return !m.appClosed && (m.state === TcpState.Established || m.state === TcpState.CloseWait);
  }
  run(m: Model, r: Real): void {
    count('AppClose');
    r.ep.close(r.now);
    m.appClosed = true;
    m.state = m.state === TcpState.Established ? TcpState.FinWait1 : TcpState.LastAck;
    agree(m, r);
  }
  toString(): string {
    return 'AppClose';
  }
}

class Tick implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check(m: Model): boolean {
    return m.state !== TcpState.Closed;
  }
  run(m: Model, r: Real): void {
    count('Tick');
    const end = r.now + this.ms;
    for (let d = r.ep.nextDeadline(); d !== undefined && d <= end; d = r.ep.nextDeadline()) {
      r.now = Math.max(r.now, d);
      r.ep.onTimer(r.now);
      if (m.state === TcpState.TimeWait && r.ep.state === TcpState.Closed)
        m.state = TcpState.Closed;
      agree(m, r);
    }
    r.now = end;
    agree(m, r);
  }
  toString(): string {
    return `Tick(${this.ms})`;
  }
}

const peerData = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.boolean())
  .map(([n, p]) => new PeerData(n, p));
const peerAck = fc
  .tuple(
    fc.integer({ min: 0, max: 5000 }),
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30000 })),
  )
  .map(([n, w]) => new PeerAck(n, w));
const appSend = fc.integer({ min: 1, max: 8000 }).map((n) => new AppSend(n));
const appConsume = fc.integer({ min: 1, max: 20000 }).map((n) => new AppConsume(n));
// Data, ACKs and consumption are listed more than once: they are the common case.
const commands = [
  peerData,
  peerData,
  peerAck,
  peerAck,
  peerAck,
  appSend,
  appSend,
  appConsume,
  appConsume,
  fc.integer({ min: 1, max: 2000 }).map((n) => new PeerReordered(n)),
  fc.constant(new PeerDuplicate()),
  fc.constant(new PeerFin()),
  fc.constant(new AppClose()),
  fc.integer({ min: 1, max: 3000 }).map((ms) => new Tick(ms)),
];

test('one connection agrees with the reference model', () => {
  fc.assert(
    fc.property(
      fc.commands(commands, { maxCommands: 80, size: 'large' }),
      fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(0xfffff000)),
      (cmds, iss) => {
        const model: Model = {
          state: TcpState.Established,
          peerSent: 0,
          peerFin: false,
          appWritten: 0,
          acked: 0,
          appClosed: false,
          finAcked: false,
          unconsumed: 0,
          peerWindow: 30_000,
        };
        fc.modelRun(() => ({ model, real: new Real(iss) }), cmds);
      },
    ),
    { numRuns: numRuns(300) },
  );
  for (const c of [
    'PeerData',
    'PeerReordered',
    'PeerAck',
    'PeerFin',
    'AppSend',
    'AppClose',
    'Tick',
  ]) {
    assert.ok((ran.get(c) ?? 0) > 0, `${c} never ran`);
  }
  console.log('commands run:', JSON.stringify(Object.fromEntries(ran)));
});
