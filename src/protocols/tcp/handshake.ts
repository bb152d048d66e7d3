/**
 * What the two SYNs settle (RFC 9293 3.7.1 and 3.5, RFC 7323, RFC 2018):
 * segment size, window scaling, timestamps and SACK. Each is used only
 * when both sides offered it.
 */
import type { TcpSegment } from './segment.js';

/** The MSS to assume when the peer's SYN has none (RFC 9293 3.7.1). */
export const DEFAULT_MSS_V4 = 536;
export const DEFAULT_MSS_V6 = 1220;
/** RFC 7323 2.3: larger shifts are treated as 14. */
export const MAX_WINDOW_SHIFT = 14;
/** A timestamps option, padded, in every segment once negotiated. */
export const TIMESTAMPS_LENGTH = 12;

/** The MSS for a link MTU: the MTU less minimal IP and TCP headers. */
export function mssFromMtu(mtu: number, ipv6: boolean): number {
  return Math.max(1, Math.min(0xffff, mtu - (ipv6 ? 60 : 40)));
}

/** The smallest shift that lets the window field cover `bufferSize`. */
export function windowShiftFor(bufferSize: number): number {
  let shift = 0;
  while (shift < MAX_WINDOW_SHIFT && bufferSize / 2 ** shift > 0xffff) shift++;
  return shift;
}

/** The options of the peer's SYN, kept until our SYN-ACK goes out. */
export interface PeerSyn {
  mss: number | undefined;
  windowScale: number | undefined;
  tsVal: number | undefined;
  sackPermitted: boolean;
  /** The SYN's window field (never scaled). */
  window: number;
}

export function peerSynOf(s: TcpSegment): PeerSyn {
  return {
    mss: s.mss,
    windowScale: s.windowScale,
    tsVal: s.tsVal,
    sackPermitted: s.sackPermitted,
    window: s.window,
  };
}

export interface Negotiated {
  /** Our shift and the peer's, both 0 unless both sides sent the option. */
  rcvWscale: number;
  sndWscale: number;
  timestamps: boolean;
  /** Our ACKs carry SACK blocks for the bytes we hold out of order. */
  sack: boolean;
  /** Payload bytes per segment we send, timestamps option deducted. */
  sndMss: number;
}

export interface Offer {
  windowScaling: boolean;
  timestamps: boolean;
  sack: boolean;
  /** Our MSS (from the MTU); also caps what we send. */
  mss: number;
  ipv6: boolean;
  rcvShift: number;
}

export function negotiate(ours: Offer, peer: PeerSyn): Negotiated {
  const scaling = ours.windowScaling && peer.windowScale !== undefined;
  const timestamps = ours.timestamps && peer.tsVal !== undefined;
  const peerMss = peer.mss ?? (ours.ipv6 ? DEFAULT_MSS_V6 : DEFAULT_MSS_V4);
  return {
    rcvWscale: scaling ? ours.rcvShift : 0,
    sndWscale: scaling ? Math.min(peer.windowScale!, MAX_WINDOW_SHIFT) : 0,
    timestamps,
    sack: ours.sack && peer.sackPermitted,
    sndMss: Math.max(1, Math.min(peerMss, ours.mss) - (timestamps ? TIMESTAMPS_LENGTH : 0)),
  };
}
