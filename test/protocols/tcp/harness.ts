/**
 * Test scaffolding for the TCP endpoint: a sink that records every output,
 * and a scripted peer that builds real segments (encoded, then parsed with
 * a checksum, so the codec is in the loop).
 */
import assert from 'node:assert/strict';
import { pseudoSumV4 } from '../../../src/protocols/checksum.js';
import {
  TcpControl,
  TcpSegment,
  encodeTcpSegment,
  encodedLength,
  type TcpRepr,
} from '../../../src/protocols/tcp/segment.js';
import { seq, seqAdd, type Seq } from '../../../src/protocols/tcp/seq.js';
import {
  TcpEndpoint,
  type TcpConfig,
  type TcpFreeReason,
  type TcpSink,
  type TcpState,
} from '../../../src/protocols/tcp/endpoint.js';

export const GUEST = 0x0a000264;
export const HOST = 0x0a000202;
export const GUEST_PORT = 40000;
export const HOST_PORT = 80;

/** Copies a repr: the endpoint reuses its own. */
function copy(r: Readonly<TcpRepr>): TcpRepr {
  return { ...r, payload: r.payload.slice(), sackBlocks: r.sackBlocks?.slice() };
}

export class Recorder implements TcpSink {
  out: TcpRepr[] = [];
  received: number[] = [];
  fins = 0;
  establishedCount = 0;
  rooms: number[] = [];
  freedReasons: TcpFreeReason[] = [];
  transitions: Array<[TcpState, TcpState]> = [];

  segment(seg: Readonly<TcpRepr>): void {
    this.out.push(copy(seg));
  }
  data(bytes: Uint8Array): void {
    this.received.push(...bytes);
  }
  peerFin(): void {
    this.fins++;
  }
  established(): void {
    this.establishedCount++;
  }
  sendRoom(room: number): void {
    this.rooms.push(room);
  }
  freed(reason: TcpFreeReason): void {
    this.freedReasons.push(reason);
  }
  stateChange(from: TcpState, to: TcpState): void {
    this.transitions.push([from, to]);
  }

  /** The segments sent since the last call. */
  take(): TcpRepr[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  /** Exactly one segment was sent since the last call; returns it. */
  one(): TcpRepr {
    const o = this.take();
    assert.equal(o.length, 1, `expected one segment, got ${o.length}`);
    return o[0]!;
  }

  none(): void {
    const o = this.take();
    assert.equal(o.length, 0, `expected no segment, got ${o.length}`);
  }
}

/** Encodes `r` as the guest would send it and parses it back. */
export function wire(r: TcpRepr): TcpSegment {
  const n = encodedLength(r);
  const buf = new Uint8Array(n);
  const ps = pseudoSumV4(GUEST, HOST, 6, n);
  encodeTcpSegment(buf, 0, r, ps);
  return TcpSegment.parse(buf, 0, n, ps);
}

export interface PeerSeg {
  seq?: number;
  ack?: number | null;
  control?: TcpControl;
  push?: boolean;
  window?: number;
  payload?: Uint8Array | string;
  tsVal?: number;
  tsEcr?: number;
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
}

/**
 * A scripted peer: tracks its own next sequence number and the last
 * sequence it has seen from us, so tests read like the protocol.
 */
export class Peer {
  nxt: Seq;
  /** What the peer acknowledges by default. */
  ackNo: Seq = seq(0);
  window = 65535;
  /** Timestamps to send (the peer's TSval), or undefined for none. */
  ts: number | undefined = undefined;
  tsEcr = 0;

  constructor(readonly iss: number) {
    this.nxt = seq(iss);
  }

  seg(p: PeerSeg = {}): TcpSegment {
    const payload =
      typeof p.payload === 'string'
        ? new TextEncoder().encode(p.payload)
        : (p.payload ?? new Uint8Array(0));
    const control = p.control ?? TcpControl.None;
    const s = seq(p.seq ?? this.nxt);
    const r: TcpRepr = {
      srcPort: GUEST_PORT,
      dstPort: HOST_PORT,
      seq: s,
      ack: p.ack === null ? undefined : seq(p.ack ?? this.ackNo),
      control,
      push: p.push ?? false,
      window: p.window ?? this.window,
      payload,
      mss: p.mss,
      windowScale: p.windowScale,
      sackPermitted: p.sackPermitted,
      tsVal: p.tsVal ?? this.ts,
      tsEcr: p.tsEcr ?? this.tsEcr,
    };
    if (p.seq === undefined) {
      this.nxt = seqAdd(
        s,
        payload.length + (control === TcpControl.Syn || control === TcpControl.Fin ? 1 : 0),
      );
    }
    return wire(r);
  }
}

export function config(over: Partial<TcpConfig> = {}): TcpConfig {
  return { localPort: HOST_PORT, remotePort: GUEST_PORT, iss: 1000, mtu: 1500, ...over };
}

export function bytes(n: number, from = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
}

export interface Connected {
  ep: TcpEndpoint;
  rec: Recorder;
  peer: Peer;
  now: number;
}

/**
 * A passive open carried through to ESTABLISHED at time 0..1, with the
 * guest offering MSS 1460, window scale 7 and (optionally) timestamps and
 * SACK-permitted.
 */
export function established(
  over: Partial<TcpConfig> = {},
  opts: { timestamps?: boolean; windowScale?: number | undefined; sack?: boolean } = {},
): Connected {
  const rec = new Recorder();
  const ep = new TcpEndpoint(config(over), rec);
  const peer = new Peer(5000);
  const ts = opts.timestamps ?? false;
  if (ts) peer.ts = 100;
  const ws = 'windowScale' in opts ? opts.windowScale : 7;
  const syn = { control: TcpControl.Syn, ack: null, mss: 1460, windowScale: ws };
  ep.receive(peer.seg({ ...syn, sackPermitted: opts.sack ?? false }), 0);
  ep.hostConnected(0);
  const synAck = rec.one();
  peer.ackNo = seqAdd(synAck.seq, 1);
  if (ts) peer.tsEcr = synAck.tsVal!;
  ep.receive(peer.seg(), 1);
  rec.take();
  return { ep, rec, peer, now: 1 };
}
