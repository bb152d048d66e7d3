// The TCP endpoint's story, state by state (RFC 9293 and friends).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpEndpoint, TcpState } from '../../../src/protocols/tcp/endpoint.js';
import { TcpControl } from '../../../src/protocols/tcp/segment.js';
import { seq, seqAdd } from '../../../src/protocols/tcp/seq.js';
import { Peer, Recorder, bytes, config, established } from './harness.js';

const SYN = TcpControl.Syn;
const FIN = TcpControl.Fin;
const RST = TcpControl.Rst;

describe('CONNECT-PENDING and the passive handshake', () => {
  function pending(peerOpts: { ts?: boolean; ws?: number } = { ws: 7 }) {
    const rec = new Recorder();
    const ep = new TcpEndpoint(config(), rec);
    const peer = new Peer(5000);
    if (peerOpts.ts) peer.ts = 77;
    ep.receive(peer.seg({ control: SYN, ack: null, mss: 1460, windowScale: peerOpts.ws }), 0);
    return { rec, ep, peer };
  }

  test('a SYN waits for the host socket and sends nothing', () => {
    const { rec, ep } = pending();
    assert.equal(ep.state, TcpState.ConnectPending);
    rec.none();
    assert.equal(ep.nextDeadline(), undefined);
  });

  test('a retransmitted SYN while the host connects changes nothing', () => {
    const { rec, ep, peer } = pending();
    ep.receive(peer.seg({ seq: 5000, control: SYN, ack: null, mss: 1460 }), 500);
    ep.receive(peer.seg({ seq: 5000, control: SYN, ack: null, mss: 1460 }), 1500);
    assert.equal(ep.state, TcpState.ConnectPending);
    rec.none();
    ep.hostConnected(1600);
    const sa = rec.one();
    assert.equal(sa.ack, 5001);
  });

  test('host connected: SYN-ACK with our MSS, window scale and echoed timestamp', () => {
    const { rec, ep } = pending({ ts: true, ws: 7 });
    ep.hostConnected(10);
    const sa = rec.one();
    assert.equal(sa.control, SYN);
    assert.equal(sa.seq, 1000);
    assert.equal(sa.ack, 5001);
    assert.equal(sa.mss, 1460);
    assert.equal(sa.windowScale, 7); // 4 MiB buffer needs shift 7
    assert.equal(sa.window, 65535); // SYN windows are never scaled
    assert.equal(sa.tsEcr, 77);
    assert.equal(sa.tsVal, 10);
    assert.equal(ep.state, TcpState.SynReceived);
  });

  test('a peer without options gets none back, and an unscaled window', () => {
    const { rec, ep } = pending({ ws: undefined });
    ep.hostConnected(0);
    const sa = rec.one();
    assert.equal(sa.windowScale, undefined);
    assert.equal(sa.tsVal, undefined);
    assert.equal(sa.window, 65535);
  });

  test('host refused: RST|ACK for the SYN, then freed', () => {
    const { rec, ep } = pending();
    ep.hostRefused(5);
    const r = rec.one();
    assert.equal(r.control, RST);
    assert.equal(r.seq, 0);
    assert.equal(r.ack, 5001);
    assert.deepEqual(rec.freedReasons, ['refused']);
    assert.equal(ep.state, TcpState.Closed);
  });

  test('host unreachable: freed with nothing sent (the glue sends ICMP)', () => {
    const { rec, ep } = pending();
    ep.hostUnreachable(5);
    rec.none();
    assert.deepEqual(rec.freedReasons, ['unreachable']);
  });

  test('the guest gives up with a RST while the host connects', () => {
    const { rec, ep, peer } = pending();
    ep.receive(peer.seg({ seq: 5001, control: RST, ack: null }), 3);
    assert.deepEqual(rec.freedReasons, ['peer-reset']);
    ep.hostConnected(4); // the late host socket finds nothing to do
    rec.none();
  });

  test('the third ACK establishes, and a repeated SYN gets the SYN-ACK again', () => {
    const { rec, ep, peer } = pending();
    ep.hostConnected(0);
    rec.take();
    ep.receive(peer.seg({ seq: 5000, control: SYN, ack: null }), 100);
    const again = rec.one();
    assert.equal(again.control, SYN);
    assert.equal(again.seq, 1000);
    peer.ackNo = seq(1001);
    ep.receive(peer.seg(), 200);
    assert.equal(ep.state, TcpState.Established);
    assert.equal(rec.establishedCount, 1);
    assert.equal(ep.nextDeadline(), undefined);
  });

  test('an ACK for something else in SYN-RECEIVED gets a RST', () => {
    const { rec, ep, peer } = pending();
    ep.hostConnected(0);
    rec.take();
    ep.receive(peer.seg({ ack: 4242 }), 10);
    const r = rec.one();
    assert.equal(r.control, RST);
    assert.equal(r.seq, 4242);
    assert.equal(ep.state, TcpState.SynReceived);
  });

  test('the SYN-ACK is retransmitted with backoff, then the endpoint gives up', () => {
    const { rec, ep } = pending();
    ep.hostConnected(0);
    rec.take();
    const times: number[] = [];
    for (let i = 0; i < 10 && ep.freed === undefined; i++) {
      const t = ep.nextDeadline()!;
      times.push(t);
      ep.onTimer(t);
    }
    assert.deepEqual(times, [1000, 3000, 7000, 15000, 31000, 63000, 123000]);
    const sent = rec.take();
    assert.equal(sent.filter((s) => s.control === SYN).length, 6);
    assert.equal(sent.at(-1)!.control, RST);
    assert.deepEqual(rec.freedReasons, ['timeout']);
  });
});

describe('SYN-SENT and the active open', () => {
  function syn() {
    const rec = new Recorder();
    const ep = new TcpEndpoint(config({ iss: 0xfffffff0 }), rec);
    ep.connect(0);
    return { rec, ep, s: rec.one() };
  }

  test('connect sends a SYN offering MSS, window scale and timestamps', () => {
    const { s, ep } = syn();
    assert.equal(s.control, SYN);
    assert.equal(s.ack, undefined);
    assert.equal(s.seq, 0xfffffff0);
    assert.equal(s.mss, 1460);
    assert.equal(s.windowScale, 7);
    assert.equal(s.tsEcr, 0);
    assert.equal(ep.state, TcpState.SynSent);
    assert.equal(ep.nextDeadline(), 1000);
  });

  test('a SYN-ACK establishes and is acknowledged', () => {
    const { rec, ep } = syn();
    const peer = new Peer(777);
    peer.ts = 9;
    ep.receive(
      peer.seg({ control: SYN, ack: 0xfffffff1, mss: 1400, windowScale: 2, tsEcr: 0 }),
      20,
    );
    const a = rec.one();
    assert.equal(a.ack, 778);
    assert.equal(a.seq, 0xfffffff1);
    assert.equal(a.tsEcr, 9);
    assert.equal(ep.state, TcpState.Established);
    assert.equal(ep.mss, 1400 - 12);
    assert.equal(ep.nextDeadline(), undefined);
  });

  test('a RST acknowledging our SYN: connection refused', () => {
    const { rec, ep } = syn();
    const peer = new Peer(0);
    ep.receive(peer.seg({ control: RST, ack: 0xfffffff1 }), 5);
    assert.deepEqual(rec.freedReasons, ['refused']);
  });

  test('a RST without ACK, or an ACK of the wrong thing, does not reset', () => {
    const { rec, ep } = syn();
    const peer = new Peer(0);
    ep.receive(peer.seg({ control: RST, ack: null }), 5);
    assert.equal(ep.state, TcpState.SynSent);
    ep.receive(peer.seg({ control: SYN, ack: 12345 }), 6);
    const r = rec.one();
    assert.equal(r.control, RST);
    assert.equal(r.seq, 12345);
    assert.equal(ep.state, TcpState.SynSent);
  });

  test('simultaneous open: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED', () => {
    const { rec, ep } = syn();
    const peer = new Peer(300);
    ep.receive(peer.seg({ control: SYN, ack: null, mss: 1460 }), 5);
    const sa = rec.one();
    assert.equal(sa.control, SYN);
    assert.equal(sa.ack, 301);
    assert.equal(ep.state, TcpState.SynReceived);
    peer.ackNo = seq(0xfffffff1);
    ep.receive(peer.seg({ control: SYN, ack: 0xfffffff1, seq: 300 }), 6);
    peer.nxt = seq(301);
    ep.receive(peer.seg(), 7);
    assert.equal(ep.state, TcpState.Established);
  });

  test('data and a close queued before the guest answers go out after it', () => {
    const { rec, ep } = syn();
    ep.send(bytes(10), 1);
    ep.close(2);
    rec.none();
    const peer = new Peer(50);
    ep.receive(peer.seg({ control: SYN, ack: 0xfffffff1, mss: 1460 }), 5);
    const out = rec.take();
    assert.equal(ep.state, TcpState.FinWait1);
    const data = out.find((s) => s.payload.length > 0)!;
    assert.equal(data.payload.length, 10);
    assert.equal(data.control, FIN); // the FIN rides on the last data
  });
});

describe('ESTABLISHED: receiving data', () => {
  test('in-order data is delivered as it arrives; ACK every second segment', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ payload: bytes(1000) }), 10);
    assert.equal(rec.received.length, 1000);
    rec.none(); // delayed
    assert.equal(ep.nextDeadline(), 50);
    ep.receive(peer.seg({ payload: bytes(1000, 1000) }), 11);
    const a = rec.one();
    assert.equal(a.ack, 5001 + 2000);
    assert.equal(ep.nextDeadline(), undefined);
  });

  test('a lone segment is acknowledged when the delayed ACK timer fires', () => {
    const { ep, rec, peer } = established({ delayedAckMs: 25 });
    ep.receive(peer.seg({ payload: 'x' }), 10);
    rec.none();
    ep.onTimer(35);
    assert.equal(rec.one().ack, 5002);
  });

  test('PSH is acknowledged at once', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ payload: 'GET /', push: true }), 10);
    assert.equal(rec.one().ack, 5006);
  });

  test('out-of-order data is held, a duplicate ACK sent, then delivered in order', () => {
    const { ep, rec, peer } = established();
    const a = peer.seg({ payload: bytes(100) });
    const b = peer.seg({ payload: bytes(100, 100) });
    const c = peer.seg({ payload: bytes(100, 200) });
    ep.receive(c, 5);
    assert.equal(rec.one().ack, 5001);
    ep.receive(b, 6);
    assert.equal(rec.one().ack, 5001);
    assert.equal(rec.received.length, 0);
    assert.equal(ep.reassembling, 200);
    ep.receive(a, 7);
    assert.equal(rec.one().ack, 5301); // filling the gap is acknowledged at once
    assert.deepEqual(rec.received, [...bytes(300)]);
    assert.equal(ep.reassembling, 0);
  });

  test('SACK-permitted is answered only when the SYN offered it (RFC 2018)', () => {
    const on = established({}, { sack: true });
    const off = established({}, { sack: false });
    const refused = established({ sack: false }, { sack: true });
    for (const [c, want] of [
      [on, true],
      [off, false],
      [refused, false],
    ] as const) {
      c.ep.receive(c.peer.seg({ seq: 6001, payload: bytes(10) }), 5);
      assert.equal(c.rec.one().sackBlocks !== undefined, want);
    }
  });

  test('with SACK, duplicate ACKs name what is held, the latest block first', () => {
    const { ep, rec, peer } = established({}, { sack: true });
    const at = (n: number) => 5001 + n * 100;
    ep.receive(peer.seg({ seq: at(2), payload: bytes(100) }), 5);
    assert.deepEqual(rec.one().sackBlocks, [at(2), at(3)]);
    ep.receive(peer.seg({ seq: at(5), payload: bytes(100) }), 6);
    assert.deepEqual(rec.one().sackBlocks, [at(5), at(6), at(2), at(3)]);
    ep.receive(peer.seg({ seq: at(3), payload: bytes(100) }), 7); // joins the first run
    assert.deepEqual(rec.one().sackBlocks, [at(2), at(4), at(5), at(6)]);
    ep.receive(peer.seg({ seq: at(0), payload: bytes(200) }), 8);
    const a = rec.one();
    assert.equal(a.ack, at(4));
    assert.deepEqual(a.sackBlocks, [at(5), at(6)]);
    ep.receive(peer.seg({ seq: at(4), payload: bytes(100) }), 9);
    const b = rec.one();
    assert.equal(b.ack, at(6));
    assert.equal(b.sackBlocks, undefined, 'nothing held: no blocks');
  });

  test('SACK blocks fit beside timestamps: three at most', () => {
    const { ep, rec, peer } = established({}, { sack: true, timestamps: true });
    for (let i = 0; i < 5; i++) {
      ep.receive(peer.seg({ seq: 5001 + 200 * (i + 1), payload: bytes(100) }), 5 + i);
    }
    const acks = rec.take();
    assert.equal(acks.at(-1)!.sackBlocks!.length, 6);
    assert.equal(acks.at(-1)!.sackBlocks![0], 5001 + 1000);
  });

  test('overlapping and duplicate segments deliver each byte once', () => {
    const { ep, rec, peer } = established();
    const all = bytes(300);
    ep.receive(peer.seg({ seq: 5101, payload: all.subarray(100, 250) }), 1);
    ep.receive(peer.seg({ seq: 5051, payload: all.subarray(50, 150) }), 2);
    ep.receive(peer.seg({ seq: 5001, payload: all.subarray(0, 120) }), 3);
    ep.receive(peer.seg({ seq: 5001, payload: all.subarray(0, 300) }), 4);
    ep.receive(peer.seg({ seq: 5001, payload: all.subarray(0, 300) }), 5);
    assert.deepEqual(rec.received, [...all]);
    assert.equal(ep.rcvNxt, 5301);
  });

  test('the window shrinks as data waits for the host and reopens when consumed', () => {
    const { ep, rec, peer } = established({ receiveBufferSize: 64 * 1024, windowScaling: false });
    for (let i = 0; i < 40; i++) ep.receive(peer.seg({ payload: bytes(1460) }), 10 + i);
    const acks = rec.take();
    const last = acks.at(-1)!;
    assert.equal(last.ack, 5001 + 40 * 1460);
    assert.ok(last.window <= 65536 - 40 * 1460 + 1460, `window ${last.window}`);
    assert.equal(ep.unconsumed, 40 * 1460);
    ep.consumed(40 * 1460, 100);
    const update = rec.one();
    assert.equal(update.window, 65535);
  });

  test('data beyond the window is trimmed, never delivered', () => {
    const { ep, rec, peer } = established({ receiveBufferSize: 4000, windowScaling: false });
    ep.receive(peer.seg({ payload: bytes(3000) }), 5);
    ep.receive(peer.seg({ payload: bytes(3000, 3000) }), 6);
    assert.equal(rec.received.length, 4000);
    assert.equal(ep.rcvNxt, 5001 + 4000);
    assert.equal(rec.take().at(-1)!.window, 0);
  });

  test('with window scaling, one connection can offer megabytes', () => {
    const { ep, rec, peer } = established({ receiveBufferSize: 8 * 1024 * 1024 });
    ep.receive(peer.seg({ payload: 'x', push: true }), 2);
    const a = rec.one();
    assert.equal(ep.rcvWnd, a.window * 256);
    assert.ok(ep.rcvWnd > 8 * 1024 * 1024 - 300);
  });
});

describe('ESTABLISHED: sending data', () => {
  test('data goes out in MSS segments, within the initial congestion window', () => {
    const { ep, rec, peer } = established();
    ep.send(bytes(100_000), 5);
    const segs = rec.take();
    assert.equal(segs.length, 10); // RFC 6928: 10 segments
    assert.ok(segs.every((s) => s.payload.length === 1460));
    assert.equal(segs[0]!.seq, 1001);
    assert.equal(ep.nextDeadline(), 5 + ep.rto);
    peer.ackNo = seq(1001 + 2 * 1460);
    ep.receive(peer.seg(), 10);
    assert.equal(rec.take().length, 4); // slow start: 2 acked, cwnd += 2 MSS
  });

  test('the send buffer fills, then reports room again once acked', () => {
    const { ep, rec, peer } = established({ sendBufferSize: 10_000 });
    assert.equal(ep.send(bytes(6000), 1), 4000);
    assert.equal(ep.send(bytes(6000), 2), -2000);
    assert.deepEqual(rec.rooms, []);
    rec.take();
    peer.ackNo = seq(1001 + 7000);
    ep.receive(peer.seg(), 3);
    assert.deepEqual(rec.rooms, [5000]);
    assert.equal(ep.sendRoom, 5000);
  });

  test('nothing beyond the peer window, and the timer stops when all is acked', () => {
    const { ep, rec, peer } = established({}, { windowScale: undefined });
    peer.window = 3000;
    peer.ackNo = seq(1001);
    ep.receive(peer.seg(), 2);
    rec.take();
    ep.send(bytes(10_000), 3);
    const segs = rec.take();
    // Two full segments; the 80 bytes left would be a silly window (RFC 9293 3.8.6.2.1).
    assert.equal(
      segs.reduce((n, s) => n + s.payload.length, 0),
      2920,
    );
    peer.ackNo = seq(1001 + 2920);
    peer.window = 0;
    ep.receive(peer.seg(), 10);
    rec.none();
    assert.equal(ep.sndUna, 3921);
    assert.notEqual(ep.nextDeadline(), undefined); // the persist timer
  });
});

describe('retransmission (RFC 6298) and fast retransmit (RFC 5681)', () => {
  test('an unacknowledged segment is resent at the RTO, which doubles each time', () => {
    const { ep, rec } = established({ maxRetransmits: 3 });
    ep.send(bytes(500), 10);
    const first = rec.one();
    const times: number[] = [];
    while (ep.freed === undefined) {
      const t = ep.nextDeadline()!;
      times.push(t - 10);
      ep.onTimer(t);
      const again = rec.take();
      if (ep.freed === undefined) {
        assert.equal(again.length, 1);
        assert.equal(again[0]!.seq, first.seq);
        assert.deepEqual(again[0]!.payload, first.payload);
      } else {
        assert.equal(again[0]!.control, RST);
      }
    }
    const steps = times.map((t, i) => t - (i ? times[i - 1]! : 0));
    assert.deepEqual(
      steps.slice(1),
      steps.slice(1).map((_, i) => steps[0]! * 2 ** (i + 1)),
    );
    assert.deepEqual(rec.freedReasons, ['timeout']);
    assert.equal(ep.stats.timeouts, 3);
  });

  test('the timer never fires for data that was acknowledged', () => {
    const { ep, rec, peer } = established();
    ep.send(bytes(500), 10);
    rec.take();
    peer.ackNo = seq(1501);
    ep.receive(peer.seg(), 11);
    assert.equal(ep.nextDeadline(), undefined);
    ep.onTimer(100_000);
    rec.none();
  });

  test('three duplicate ACKs resend the missing segment before any timeout', () => {
    const { ep, rec, peer } = established();
    ep.send(bytes(6 * 1460), 10);
    const segs = rec.take();
    assert.equal(segs.length, 6);
    peer.ackNo = seq(1001 + 1460); // segment 2 lost: 3, 4, 5 each bring a duplicate
    ep.receive(peer.seg(), 11);
    rec.take();
    ep.receive(peer.seg(), 12);
    ep.receive(peer.seg(), 12);
    rec.none();
    ep.receive(peer.seg(), 12);
    const re = rec.take();
    assert.equal(re[0]!.seq, 1001 + 1460);
    assert.equal(ep.stats.fastRetransmits, 1);
    assert.equal(ep.stats.timeouts, 0);
    // A partial ACK (NewReno) resends the next hole at once.
    peer.ackNo = seq(1001 + 3 * 1460);
    ep.receive(peer.seg(), 13);
    assert.equal(rec.take()[0]!.seq, 1001 + 3 * 1460);
  });
});

describe('segmentation offload: the congestion arithmetic counts the segments sent', () => {
  const GSO = 4 * 1460;

  test('slow start grows by up to two sent segments per ACK, not two MSS', () => {
    const { ep, rec, peer } = established({ gsoBytes: GSO });
    ep.send(bytes(200_000), 5);
    const first = rec.take();
    assert.deepEqual(
      first.map((s) => s.payload.length),
      [GSO, GSO, 14600 - 2 * GSO], // the initial window of RFC 6928, in bytes
    );
    peer.ackNo = seq(1001 + 14600);
    ep.receive(peer.seg(), 6);
    const sent = rec.take().reduce((n, s) => n + s.payload.length, 0);
    assert.equal(sent, 14600 + 2 * GSO);
  });

  test('two duplicate ACKs for three segments in flight resend the first whole (RFC 5827)', () => {
    const { ep, rec, peer } = established({ gsoBytes: GSO });
    ep.send(bytes(100_000), 5);
    assert.equal(rec.take().length, 3);
    peer.ackNo = seq(1001); // the first segment is lost; the other two each bring a duplicate
    ep.receive(peer.seg(), 6);
    rec.none();
    ep.receive(peer.seg(), 6);
    const re = rec.take();
    assert.equal(re[0]!.seq, 1001);
    assert.equal(re[0]!.payload.length, GSO);
    assert.equal(ep.stats.fastRetransmits, 1);
    assert.equal(ep.stats.timeouts, 0);
  });

  test('a duplicate ACK for one segment in flight waits for the timer', () => {
    const { ep, rec, peer } = established({ gsoBytes: GSO });
    ep.send(bytes(1000), 5);
    rec.one();
    peer.ackNo = seq(1001);
    ep.receive(peer.seg(), 6);
    ep.receive(peer.seg(), 6);
    rec.none();
    assert.equal(ep.stats.fastRetransmits, 0);
  });
});

describe('zero window probing', () => {
  test('a closed window is probed with one byte, with backoff, until it opens', () => {
    const { ep, rec, peer } = established({}, { windowScale: undefined });
    peer.window = 0;
    ep.receive(peer.seg(), 2);
    rec.take();
    ep.send(bytes(5000), 3);
    rec.none();
    const t1 = ep.nextDeadline()!;
    ep.onTimer(t1);
    const probe = rec.one();
    assert.equal(probe.payload.length, 1);
    assert.equal(probe.seq, 1001);
    ep.receive(peer.seg(), t1 + 1); // still closed: the probe byte is refused
    const t2 = ep.nextDeadline()!;
    ep.onTimer(t2);
    const again = rec.one();
    assert.equal(again.seq, 1001);
    assert.equal(again.payload.length, 1);
    assert.ok(ep.nextDeadline()! - t2 > t2 - t1 - 1, 'backoff');
    peer.window = 20000;
    ep.receive(peer.seg(), t2 + 5);
    const flow = rec.take();
    assert.equal(flow[0]!.seq, 1001); // the refused probe byte goes again first
    assert.equal(
      flow.reduce((n, s) => n + s.payload.length, 0),
      5000,
    );
    assert.equal(ep.freed, undefined);
  });

  test('probing never gives up while the peer answers', () => {
    const { ep, rec, peer } = established({ maxRetransmits: 2 }, { windowScale: undefined });
    peer.window = 0;
    ep.receive(peer.seg(), 2);
    ep.send(bytes(10), 3);
    for (let i = 0; i < 8; i++) {
      ep.onTimer(ep.nextDeadline()!);
      rec.take();
      ep.receive(peer.seg(), ep.nextDeadline()! - 1);
    }
    assert.equal(ep.freed, undefined);
  });
});

describe('FIN both ways, with half-close', () => {
  test('peer closes first: CLOSE-WAIT keeps sending, then LAST-ACK frees', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ control: FIN, payload: 'bye' }), 5);
    assert.equal(ep.state, TcpState.CloseWait);
    assert.equal(rec.fins, 1);
    assert.equal(rec.one().ack, 5001 + 3 + 1);
    ep.send(bytes(100), 6); // our direction still flows
    assert.equal(rec.one().payload.length, 100);
    ep.close(7);
    assert.equal(ep.state, TcpState.LastAck);
    const fin = rec.one();
    assert.equal(fin.control, FIN);
    assert.equal(fin.seq, 1101);
    peer.ackNo = seq(1102);
    ep.receive(peer.seg(), 8);
    assert.deepEqual(rec.freedReasons, ['closed']);
  });

  test('we close first: FIN-WAIT-1, FIN-WAIT-2 still receiving, TIME-WAIT, freed', () => {
    const { ep, rec, peer } = established({ timeWaitMs: 500 });
    ep.close(5);
    assert.equal(ep.state, TcpState.FinWait1);
    assert.equal(rec.one().control, FIN);
    peer.ackNo = seq(1002);
    ep.receive(peer.seg(), 6);
    assert.equal(ep.state, TcpState.FinWait2);
    ep.receive(peer.seg({ payload: 'still talking', push: true }), 7);
    assert.equal(new TextDecoder().decode(Uint8Array.from(rec.received)), 'still talking');
    rec.take();
    ep.receive(peer.seg({ control: FIN }), 8);
    assert.equal(ep.state, TcpState.TimeWait);
    assert.equal(rec.one().ack, peer.nxt);
    // The peer lost our ACK and sends its FIN again: ACK again, wait again.
    ep.receive(peer.seg({ seq: peer.nxt - 1, control: FIN }), 300);
    assert.equal(rec.one().ack, peer.nxt);
    assert.equal(ep.nextDeadline(), 800);
    ep.onTimer(800);
    assert.deepEqual(rec.freedReasons, ['closed']);
    assert.deepEqual(
      rec.transitions.map(([, to]) => to),
      [
        TcpState.ConnectPending,
        TcpState.SynReceived,
        TcpState.Established,
        TcpState.FinWait1,
        TcpState.FinWait2,
        TcpState.TimeWait,
        TcpState.Closed,
      ],
    );
  });

  test('simultaneous close goes through CLOSING', () => {
    const { ep, rec, peer } = established();
    ep.close(5);
    rec.take();
    ep.receive(peer.seg({ control: FIN }), 6); // its FIN crossed ours
    assert.equal(ep.state, TcpState.Closing);
    peer.ackNo = seq(1002);
    ep.receive(peer.seg(), 7);
    assert.equal(ep.state, TcpState.TimeWait);
  });

  test('a lost FIN is retransmitted', () => {
    const { ep, rec } = established();
    ep.close(5);
    const fin = rec.one();
    ep.onTimer(ep.nextDeadline()!);
    const again = rec.one();
    assert.equal(again.control, FIN);
    assert.equal(again.seq, fin.seq);
  });

  test('a FIN out of order is remembered until the data before it arrives', () => {
    const { ep, rec, peer } = established();
    const a = peer.seg({ payload: 'abc' });
    const f = peer.seg({ control: FIN, payload: 'def' });
    ep.receive(f, 5);
    assert.equal(rec.fins, 0);
    ep.receive(a, 6);
    assert.equal(rec.fins, 1);
    assert.equal(new TextDecoder().decode(Uint8Array.from(rec.received)), 'abcdef');
    assert.equal(ep.state, TcpState.CloseWait);
  });
});

describe('RST and RFC 5961', () => {
  test('a RST at exactly RCV.NXT resets', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ control: RST }), 5);
    assert.deepEqual(rec.freedReasons, ['peer-reset']);
    rec.none();
  });

  test('a RST elsewhere in the window gets a challenge ACK and changes nothing', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ seq: 5001 + 1000, control: RST }), 5);
    assert.equal(ep.state, TcpState.Established);
    const c = rec.one();
    assert.equal(c.ack, 5001);
    assert.equal(c.control, TcpControl.None);
    assert.equal(ep.stats.challengeAcks, 1);
  });

  test('a RST outside the window is silently dropped', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ seq: 5001 - 10, control: RST }), 5);
    rec.none();
    assert.equal(ep.state, TcpState.Established);
  });

  test('a SYN in a synchronized state gets a challenge ACK', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ seq: 5001, control: SYN, ack: null }), 5);
    assert.equal(rec.one().ack, 5001);
    assert.equal(ep.state, TcpState.Established);
  });

  test('challenge ACKs are rate limited', () => {
    const { ep, rec, peer } = established({ challengeAckLimit: 3 });
    for (let i = 0; i < 10; i++) ep.receive(peer.seg({ seq: 5001 + 10, control: RST }), 5);
    assert.equal(rec.take().length, 3);
    ep.receive(peer.seg({ seq: 5001 + 10, control: RST }), 1100);
    assert.equal(rec.take().length, 1);
  });

  test('an ACK of data never sent is answered and dropped', () => {
    const { ep, rec, peer } = established();
    ep.receive(peer.seg({ ack: 999_999, payload: 'data' }), 5);
    assert.equal(rec.received.length, 0);
    assert.equal(rec.one().ack, 5001);
  });

  test('abort sends a RST and frees', () => {
    const { ep, rec } = established();
    ep.abort(5);
    const r = rec.one();
    assert.equal(r.control, RST);
    assert.equal(r.seq, 1001);
    assert.deepEqual(rec.freedReasons, ['aborted']);
    ep.abort(6);
    ep.send(bytes(3), 7);
    rec.none();
    assert.deepEqual(rec.freedReasons, ['aborted']);
  });
});

describe('timestamps (RFC 7323)', () => {
  test('every segment carries TSval and echoes TS.Recent', () => {
    const { ep, rec, peer } = established({}, { timestamps: true });
    peer.ts = 150;
    ep.receive(peer.seg({ payload: 'a', push: true }), 40);
    const a = rec.one();
    assert.equal(a.tsVal, 40);
    assert.equal(a.tsEcr, 150);
  });

  test('PAWS: an old timestamp is dropped and acknowledged', () => {
    const { ep, rec, peer } = established({}, { timestamps: true });
    peer.ts = 200;
    ep.receive(peer.seg({ payload: 'a', push: true }), 40);
    rec.take();
    peer.ts = 150;
    ep.receive(peer.seg({ payload: 'b', push: true }), 41);
    assert.equal(rec.received.length, 1);
    assert.equal(rec.one().ack, 5002);
    assert.equal(ep.stats.pawsDropped, 1);
  });

  test('RTT comes from the echoed timestamp', () => {
    const { ep, rec, peer } = established({ minRto: 1 }, { timestamps: true });
    ep.send(bytes(100), 1000);
    const d = rec.one();
    peer.ackNo = seq(1101);
    peer.tsEcr = d.tsVal!;
    ep.receive(peer.seg(), 1030);
    assert.ok(ep.rto >= 30 && ep.rto < 200, `rto ${ep.rto}`);
  });
});

describe('TIME-WAIT', () => {
  test('a new SYN in TIME-WAIT frees the old incarnation for a new one', () => {
    const { ep, rec, peer } = established();
    ep.close(1);
    peer.ackNo = seq(1002);
    ep.receive(peer.seg({ control: FIN }), 2);
    assert.equal(ep.state, TcpState.TimeWait);
    ep.receive(peer.seg({ seq: 90000, control: SYN, ack: null }), 3);
    assert.deepEqual(rec.freedReasons, ['reopen']);
  });
});

describe('segments for a fresh endpoint', () => {
  test('anything but a SYN is refused with the RFC 9293 reset', () => {
    const rec = new Recorder();
    const ep = new TcpEndpoint(config(), rec);
    const peer = new Peer(5);
    ep.receive(peer.seg({ ack: 77, payload: 'x' }), 0);
    const r = rec.one();
    assert.equal(r.control, RST);
    assert.equal(r.seq, 77);
    assert.deepEqual(rec.freedReasons, ['refused']);
    assert.equal(seqAdd(seq(0xffffffff), 1), 0);
  });
});
