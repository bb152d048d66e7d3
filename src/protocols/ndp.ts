/**
 * Neighbor Discovery (RFC 4861) for the gateway: answering neighbour and
 * router solicitations so that the guest finds its router, configures an
 * address by SLAAC (RFC 4862) and learns the DNS server (RDNSS, RFC 8106).
 *
 * Interface:
 * - Parsers take an `Icmpv6Message` (checksum already verified), the IPv6
 *   hop limit and addresses, and apply the validity checks of RFC 4861
 *   6.1 / 7.1: hop limit 255, code 0, minimum length, no zero-length
 *   option, and the rules about the unspecified source. ParseError codes:
 *   `ndp.bad-type`, `ndp.bad-hop-limit`, `ndp.bad-code`, `ndp.truncated`,
 *   `ndp.bad-option-length`, `ndp.bad-target`, `ndp.bad-source`,
 *   `ndp.bad-destination`.
 *   `parseNeighborSolicitation` -> target, source link-layer address,
 *   whether it is duplicate address detection; `parseRouterSolicitation`
 *   -> source link-layer address; `parseNeighborAdvertisement` and
 *   `parseRouterAdvertisement` (for tests, and to learn the guest's MAC
 *   from unsolicited advertisements) -> their fields and options.
 * - Builders write the ICMPv6 message with its checksum and return the
 *   offset past it: `writeNeighborAdvertisement` (router / solicited /
 *   override flags, target link-layer option), `writeNeighborSolicitation`,
 *   `writeRouterSolicitation`, and `writeRouterAdvertisement` with prefix
 *   information (on-link and autonomous by default, default prefix
 *   fd00::/64), MTU, source link-layer and RDNSS options;
 *   `routerAdvertisementLength(repr)` sizes it.
 * - `solicitedNodeMulticast(address)` (ff02::1:ffXX:XXXX) and
 *   `multicastMac(address)` (33:33:...) for addressing.
 *
 * Not done: redirect messages, DNS search list (RFC 8106 DNSSL), route
 * information options (RFC 4191), SEND (RFC 3971). Options other than the
 * ones named are skipped, as RFC 4861 4.6 asks.
 */
import { parseIpv6, type Ipv6, type Mac } from './address.js';
import { ParseError, need } from './errors.js';
import { Icmpv6Type, finishIcmpv6Checksum, type Icmpv6Message } from './icmpv6.js';

export const NdpOption = {
  SourceLinkLayer: 1,
  TargetLinkLayer: 2,
  PrefixInformation: 3,
  RedirectedHeader: 4,
  Mtu: 5,
  Rdnss: 25,
} as const;

/** The default prefix advertised for SLAAC, as slirp4netns: fd00::/64. */
export const DEFAULT_PREFIX: Ipv6 = parseIpv6('fd00::');
export const DEFAULT_PREFIX_LENGTH = 64;

const NS_LENGTH = 24;
const NA_LENGTH = 24;
const RS_LENGTH = 8;
const RA_LENGTH = 16;
const LINK_LAYER_OPTION = 8;
const PREFIX_OPTION = 32;
const MTU_OPTION = 8;

export interface NdpOptions {
  sourceLinkLayer: Mac | undefined;
  targetLinkLayer: Mac | undefined;
  mtu: number | undefined;
  prefixes: PrefixInformation[];
  rdnss: { lifetimeSec: number; servers: Ipv6[] } | undefined;
}

export interface PrefixInformation {
  prefix: Ipv6;
  length: number;
  onLink: boolean;
  autonomous: boolean;
  validLifetimeSec: number;
  preferredLifetimeSec: number;
}

export interface NeighborSolicitation {
  target: Ipv6;
  sourceLinkLayer: Mac | undefined;
  /** Sent from the unspecified address: duplicate address detection (RFC 4862). */
  isDad: boolean;
}

export interface NeighborAdvertisement {
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: Ipv6;
  targetLinkLayer: Mac | undefined;
}

export interface RouterSolicitation {
  sourceLinkLayer: Mac | undefined;
}

export interface RouterAdvertisement extends NdpOptions {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  routerLifetimeSec: number;
  reachableTimeMs: number;
  retransTimerMs: number;
}

function check(m: Icmpv6Message, type: number, hopLimit: number, minLength: number): void {
  if (m.type !== type) throw new ParseError('ndp.bad-type');
  if (hopLimit !== 255) throw new ParseError('ndp.bad-hop-limit');
  if (m.code !== 0) throw new ParseError('ndp.bad-code');
  if (m.length < minLength) throw new ParseError('ndp.truncated');
}

const isUnspecified = (a: Ipv6) => a.every((b) => b === 0);
const isMulticast = (a: Ipv6) => a[0] === 0xff;

export function parseNeighborSolicitation(
  m: Icmpv6Message,
  hopLimit: number,
  src: Ipv6,
  dst: Ipv6,
): NeighborSolicitation {
  check(m, Icmpv6Type.NeighborSolicitation, hopLimit, NS_LENGTH);
  const target = m.buf.slice(m.offset + 8, m.offset + 24);
  if (isMulticast(target)) throw new ParseError('ndp.bad-target');
  const options = parseNdpOptions(m.buf, m.offset + NS_LENGTH, m.offset + m.length);
  const isDad = isUnspecified(src);
  if (isDad && !isSolicitedNodeMulticast(dst)) throw new ParseError('ndp.bad-destination');
  if (isDad && options.sourceLinkLayer !== undefined) throw new ParseError('ndp.bad-source');
  return { target, sourceLinkLayer: options.sourceLinkLayer, isDad };
}

export function parseNeighborAdvertisement(
  m: Icmpv6Message,
  hopLimit: number,
  dst: Ipv6,
): NeighborAdvertisement {
  check(m, Icmpv6Type.NeighborAdvertisement, hopLimit, NA_LENGTH);
  const flags = m.buf[m.offset + 4]!;
  const target = m.buf.slice(m.offset + 8, m.offset + 24);
  if (isMulticast(target)) throw new ParseError('ndp.bad-target');
  const solicited = (flags & 0x40) !== 0;
  if (solicited && isMulticast(dst)) throw new ParseError('ndp.bad-destination');
  const options = parseNdpOptions(m.buf, m.offset + NA_LENGTH, m.offset + m.length);
  return {
    router: (flags & 0x80) !== 0,
    solicited,
    override: (flags & 0x20) !== 0,
    target,
    targetLinkLayer: options.targetLinkLayer,
  };
}

export function parseRouterSolicitation(
  m: Icmpv6Message,
  hopLimit: number,
  src: Ipv6,
): RouterSolicitation {
  check(m, Icmpv6Type.RouterSolicitation, hopLimit, RS_LENGTH);
  const options = parseNdpOptions(m.buf, m.offset + RS_LENGTH, m.offset + m.length);
  if (isUnspecified(src) && options.sourceLinkLayer !== undefined) {
    throw new ParseError('ndp.bad-source');
  }
  return { sourceLinkLayer: options.sourceLinkLayer };
}

export function parseRouterAdvertisement(
  m: Icmpv6Message,
  hopLimit: number,
  src: Ipv6,
): RouterAdvertisement {
  check(m, Icmpv6Type.RouterAdvertisement, hopLimit, RA_LENGTH);
  if (src[0] !== 0xfe || (src[1]! & 0xc0) !== 0x80) throw new ParseError('ndp.bad-source');
  const b = m.buf;
  const o = m.offset;
  const u16 = (at: number) => (b[o + at]! << 8) | b[o + at + 1]!;
  const u32 = (at: number) => ((u16(at) << 16) | u16(at + 2)) >>> 0;
  return {
    curHopLimit: b[o + 4]!,
    managed: (b[o + 5]! & 0x80) !== 0,
    other: (b[o + 5]! & 0x40) !== 0,
    routerLifetimeSec: u16(6),
    reachableTimeMs: u32(8),
    retransTimerMs: u32(12),
    ...parseNdpOptions(b, o + RA_LENGTH, o + m.length),
  };
}

/** Reads the options of buf[from, to) (RFC 4861 4.6). */
export function parseNdpOptions(buf: Uint8Array, from: number, to: number): NdpOptions {
  const out: NdpOptions = {
    sourceLinkLayer: undefined,
    targetLinkLayer: undefined,
    mtu: undefined,
    prefixes: [],
    rdnss: undefined,
  };
  for (let i = from; i < to;) {
    if (i + 2 > to) throw new ParseError('ndp.truncated');
    const type = buf[i]!;
    const length = buf[i + 1]! * 8;
    if (length === 0) throw new ParseError('ndp.bad-option-length');
    if (i + length > to) throw new ParseError('ndp.truncated');
    readOption(buf, i, type, length, out);
    i += length;
  }
  return out;
}

function readOption(buf: Uint8Array, i: number, type: number, length: number, out: NdpOptions) {
  const u32 = (at: number) =>
    ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  const badLength = () => new ParseError('ndp.bad-option-length');
  switch (type) {
    case NdpOption.SourceLinkLayer:
    case NdpOption.TargetLinkLayer: {
      const mac = buf.slice(i + 2, i + 8);
      if (type === NdpOption.SourceLinkLayer) out.sourceLinkLayer = mac;
      else out.targetLinkLayer = mac;
      return;
    }
    case NdpOption.Mtu:
      if (length !== MTU_OPTION) throw badLength();
      out.mtu = u32(i + 4);
      return;
    case NdpOption.PrefixInformation:
      if (length !== PREFIX_OPTION) throw badLength();
      out.prefixes.push({
        length: buf[i + 2]!,
        onLink: (buf[i + 3]! & 0x80) !== 0,
        autonomous: (buf[i + 3]! & 0x40) !== 0,
        validLifetimeSec: u32(i + 4),
        preferredLifetimeSec: u32(i + 8),
        prefix: buf.slice(i + 16, i + 32),
      });
      return;
    case NdpOption.Rdnss: {
      if (length < 24 || (length - 8) % 16 !== 0) throw badLength();
      const servers = Array.from({ length: (length - 8) / 16 }, (_, k) =>
        buf.slice(i + 8 + 16 * k, i + 24 + 16 * k),
      );
      out.rdnss = { lifetimeSec: u32(i + 4), servers };
      return;
    }
  }
}

export function solicitedNodeMulticast(address: Ipv6): Ipv6 {
  const out = parseIpv6('ff02::1:ff00:0');
  out.set(address.subarray(13, 16), 13);
  return out;
}

function isSolicitedNodeMulticast(a: Ipv6): boolean {
  const prefix = parseIpv6('ff02::1:ff00:0');
  for (let i = 0; i < 13; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/** The Ethernet address an IPv6 multicast address maps to (RFC 2464 7). */
export function multicastMac(address: Ipv6): Mac {
  return Uint8Array.of(0x33, 0x33, address[12]!, address[13]!, address[14]!, address[15]!);
}

interface Addresses {
  src: Ipv6;
  dst: Ipv6;
}

function writeLinkLayer(buf: Uint8Array, at: number, type: number, mac: Mac): number {
  buf[at] = type;
  buf[at + 1] = 1;
  buf.set(mac.subarray(0, 6), at + 2);
  return at + LINK_LAYER_OPTION;
}

/** Starts a message: zeroes it, writes type and code 0. */
function begin(buf: Uint8Array, offset: number, length: number, type: number): void {
  need(buf, offset, length, 'ndp.buffer');
  buf.fill(0, offset, offset + length);
  buf[offset] = type;
}

export interface NeighborAdvertisementRepr extends Addresses {
  target: Ipv6;
  router: boolean;
  solicited: boolean;
  override: boolean;
  targetMac?: Mac;
}

export function writeNeighborAdvertisement(
  buf: Uint8Array,
  offset: number,
  r: NeighborAdvertisementRepr,
): number {
  const length = NA_LENGTH + (r.targetMac ? LINK_LAYER_OPTION : 0);
  begin(buf, offset, length, Icmpv6Type.NeighborAdvertisement);
  buf[offset + 4] = (r.router ? 0x80 : 0) | (r.solicited ? 0x40 : 0) | (r.override ? 0x20 : 0);
  buf.set(r.target.subarray(0, 16), offset + 8);
  if (r.targetMac) writeLinkLayer(buf, offset + NA_LENGTH, NdpOption.TargetLinkLayer, r.targetMac);
  finishIcmpv6Checksum(buf, offset, length, r.src, r.dst);
  return offset + length;
}

export interface NeighborSolicitationRepr extends Addresses {
  target: Ipv6;
  sourceMac?: Mac;
}

export function writeNeighborSolicitation(
  buf: Uint8Array,
  offset: number,
  r: NeighborSolicitationRepr,
): number {
  const length = NS_LENGTH + (r.sourceMac ? LINK_LAYER_OPTION : 0);
  begin(buf, offset, length, Icmpv6Type.NeighborSolicitation);
  buf.set(r.target.subarray(0, 16), offset + 8);
  if (r.sourceMac) writeLinkLayer(buf, offset + NS_LENGTH, NdpOption.SourceLinkLayer, r.sourceMac);
  finishIcmpv6Checksum(buf, offset, length, r.src, r.dst);
  return offset + length;
}

export interface RouterSolicitationRepr extends Addresses {
  sourceMac?: Mac;
}

export function writeRouterSolicitation(
  buf: Uint8Array,
  offset: number,
  r: RouterSolicitationRepr,
): number {
  const length = RS_LENGTH + (r.sourceMac ? LINK_LAYER_OPTION : 0);
  begin(buf, offset, length, Icmpv6Type.RouterSolicitation);
  if (r.sourceMac) writeLinkLayer(buf, offset + RS_LENGTH, NdpOption.SourceLinkLayer, r.sourceMac);
  finishIcmpv6Checksum(buf, offset, length, r.src, r.dst);
  return offset + length;
}

export interface RouterAdvertisementRepr extends Addresses {
  /** Default 64. */
  curHopLimit?: number;
  /** M flag: addresses by DHCPv6 (default false). */
  managed?: boolean;
  /** O flag: other configuration by DHCPv6 (default false). */
  other?: boolean;
  /** Default 1800 s; 0 says "not a default router". */
  routerLifetimeSec?: number;
  reachableTimeMs?: number;
  retransTimerMs?: number;
  /** Prefix information; omit for none. Fields default to on-link, autonomous, /64. */
  prefix?: Partial<PrefixInformation> & { prefix: Ipv6 };
  mtu?: number;
  sourceMac?: Mac;
  /** RDNSS (RFC 8106); lifetime defaults to the router lifetime. */
  rdnss?: { servers: readonly Ipv6[]; lifetimeSec?: number };
}

export function routerAdvertisementLength(r: RouterAdvertisementRepr): number {
  return (
    RA_LENGTH +
    (r.prefix ? PREFIX_OPTION : 0) +
    (r.mtu !== undefined ? MTU_OPTION : 0) +
    (r.sourceMac ? LINK_LAYER_OPTION : 0) +
    (r.rdnss && r.rdnss.servers.length > 0 ? 8 + 16 * r.rdnss.servers.length : 0)
  );
}

/** Writes a router advertisement; options in the order source link-layer, MTU, prefix, RDNSS. */
export function writeRouterAdvertisement(
  buf: Uint8Array,
  offset: number,
  r: RouterAdvertisementRepr,
): number {
  const length = routerAdvertisementLength(r);
  begin(buf, offset, length, Icmpv6Type.RouterAdvertisement);
  const lifetime = r.routerLifetimeSec ?? 1800;
  buf[offset + 4] = r.curHopLimit ?? 64;
  buf[offset + 5] = (r.managed ? 0x80 : 0) | (r.other ? 0x40 : 0);
  writeU16(buf, offset + 6, lifetime);
  writeU32(buf, offset + 8, r.reachableTimeMs ?? 0);
  writeU32(buf, offset + 12, r.retransTimerMs ?? 0);
  let at = offset + RA_LENGTH;
  if (r.sourceMac) at = writeLinkLayer(buf, at, NdpOption.SourceLinkLayer, r.sourceMac);
  if (r.mtu !== undefined) {
    buf[at] = NdpOption.Mtu;
    buf[at + 1] = 1;
    writeU32(buf, at + 4, r.mtu);
    at += MTU_OPTION;
  }
  if (r.prefix) at = writePrefix(buf, at, r.prefix);
  if (r.rdnss && r.rdnss.servers.length > 0) {
    buf[at] = NdpOption.Rdnss;
    buf[at + 1] = 1 + 2 * r.rdnss.servers.length;
    writeU32(buf, at + 4, r.rdnss.lifetimeSec ?? lifetime);
    r.rdnss.servers.forEach((s, k) => buf.set(s.subarray(0, 16), at + 8 + 16 * k));
  }
  finishIcmpv6Checksum(buf, offset, length, r.src, r.dst);
  return offset + length;
}

function writePrefix(buf: Uint8Array, at: number, p: RouterAdvertisementRepr['prefix'] & {}) {
  const length = p.length ?? DEFAULT_PREFIX_LENGTH;
  buf[at] = NdpOption.PrefixInformation;
  buf[at + 1] = 4;
  buf[at + 2] = length;
  buf[at + 3] = ((p.onLink ?? true) ? 0x80 : 0) | ((p.autonomous ?? true) ? 0x40 : 0);
  writeU32(buf, at + 4, p.validLifetimeSec ?? 86_400);
  writeU32(buf, at + 8, p.preferredLifetimeSec ?? 14_400);
  const prefix = p.prefix.slice(0, 16);
  for (let bit = length; bit < 128; bit++) prefix[bit >> 3]! &= ~(0x80 >> (bit & 7));
  buf.set(prefix, at + 16);
  return at + PREFIX_OPTION;
}

function writeU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}

function writeU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 24) & 0xff;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}
