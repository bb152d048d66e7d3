/**
 * ICMPv6 echo to hosts other than the stack's own addresses (RFC 4443
 * 4.1), through IPv6 ping sockets (streams/ping.ts, family 6), on the
 * design of icmp-nat.ts for IPv4: one flow and one host socket per
 * (guest identifier, destination); the request goes out as the guest sent
 * it but for the identifier, which the kernel replaces, and the hop limit,
 * one less (we are a router hop); a reply on the socket goes back to the
 * guest with the guest's identifier, from the destination, its checksum
 * recomputed over the IPv6 pseudo header.
 *
 * Errors: a request whose hop limit would expire here gets time exceeded
 * from the gateway; destinations the NAT map refuses (nat.ts), and sends
 * that fail with ENETUNREACH / EHOSTUNREACH, get destination unreachable
 * (no route / address unreachable) from the gateway. ICMPv6 errors the
 * host receives about a flow's requests (destination unreachable, packet
 * too big, time exceeded, parameter problem) reach the guest from the host
 * that reported them, quoting the guest's own request, which each flow
 * keeps for its last QUOTE_SLOTS sequence numbers (IPv6 and ICMPv6 headers).
 *
 * The flow table is ping-nat.ts's, shared with ICMP (icmp-nat.ts). Flows
 * idle for `idleMs` (30 s) are closed by a sweep on ctx.scheduler;
 * at most `maxFlows` (256) are open and one more closes the least recently
 * used. When the kernel forbids ping sockets (net.ipv4.ping_group_range,
 * which governs ICMPv6 ping sockets too) the request is counted as
 * `icmpv6.echo.no-ping-socket` and dropped, with one warning, and opening
 * is retried at most every 10 s.
 */
import type { OperatorFunction } from 'rxjs';
import { constants } from 'node:os';
import { ipv6Equals, ipv6ToString } from '../protocols/address.js';
import { ethSource } from '../protocols/ethernet.js';
import {
  ICMPV6_HEADER,
  Icmpv6Type,
  Icmpv6UnreachableCode,
  finishIcmpv6Checksum,
  writeIcmpv6,
} from '../protocols/icmpv6.js';
import { IPV6_HEADER, NextHeader } from '../protocols/ipv6.js';
import { ErrorOrigin, type PingMessage, type PingSockets } from '../streams/ping.js';
import type { StackContext } from './context.js';
import { IPV6_PAYLOAD_OFFSET, icmpv6ErrorFrame, ipv6Frame } from './frames.js';
import type { Icmpv6Packet } from './icmpv6.js';
import { natTargetV6 } from './nat.js';
import {
  pingNatFlows,
  type PingFlow,
  type PingNatFamily,
  type PingNatOptions,
} from './ping-nat.js';

export type Icmpv6NatOptions = PingNatOptions;

const QUOTE_SLOTS = 8;
const QUOTE_BYTES = IPV6_HEADER + ICMPV6_HEADER;
const { errno } = constants;

interface Flow extends PingFlow<string> {
  readonly ident: number;
  readonly dst: Uint8Array;
  guest: Uint8Array;
  readonly guestMac: Uint8Array;
  readonly quotes: Uint8Array;
  readonly quoteSeq: Int32Array;
}

export function icmpv6EchoNat(
  ctx: StackContext,
  sockets: PingSockets,
  options: Icmpv6NatOptions = {},
): OperatorFunction<Icmpv6Packet, Buffer> {
  return pingNatFlows(ctx, sockets, options, (emit) => icmpv6NatFamily(ctx, emit));
}

/** The ICMPv6 half of the ping-socket NAT (ping-nat.ts). */
function icmpv6NatFamily(
  ctx: StackContext,
  emit: (frame: Buffer) => void,
): PingNatFamily<Icmpv6Packet, string, Flow> {
  const unreachable = Icmpv6Type.DestinationUnreachable;

  const toGuest = (p: Icmpv6Packet, type: number, code: number, counter: string): void => {
    const frame = icmpv6ErrorFrame(ctx, p.ip, type, code);
    ctx.counters.add(frame === undefined ? 'icmpv6.echo.martian' : counter);
    if (frame !== undefined) emit(frame);
  };

  const admit = (p: Icmpv6Packet): string | undefined => {
    const { ip, icmp } = p;
    if (natTargetV6(ctx, ip.dst).kind === 'unreachable') {
      toGuest(p, unreachable, Icmpv6UnreachableCode.NoRoute, 'icmpv6.echo.unreachable');
      return undefined;
    }
    if (ip.hopLimit <= 1) {
      toGuest(p, Icmpv6Type.TimeExceeded, 0, 'icmpv6.echo.hop-limit-exceeded');
      return undefined;
    }
    return `${ipv6ToString(ip.dst)}#${icmp.identifier}`;
  };

  const forward = (flow: Flow, p: Icmpv6Packet): void => {
    const { ip, icmp } = p;
    if (!ipv6Equals(flow.guest, 0, ip.src)) flow.guest = Uint8Array.from(ip.src);
    flow.guestMac.set(ethSource(ip.buf));
    const slot = icmp.sequence % QUOTE_SLOTS;
    flow.quotes.set(ip.bytes.subarray(0, QUOTE_BYTES), slot * QUOTE_BYTES);
    flow.quoteSeq[slot] = icmp.sequence;
    const sent = flow.socket.send(flow.dst, icmp.bytes, ip.hopLimit - 1);
    if (sent >= 0) ctx.counters.add('icmpv6.echo.forwarded');
    else if (-sent === errno.ENETUNREACH) {
      toGuest(p, unreachable, Icmpv6UnreachableCode.NoRoute, 'icmpv6.echo.net-unreachable');
    } else if (-sent === errno.EHOSTUNREACH) {
      const code = Icmpv6UnreachableCode.AddressUnreachable;
      toGuest(p, unreachable, code, 'icmpv6.echo.host-unreachable');
    } else ctx.counters.add('icmpv6.echo.send-failed');
  };

  return {
    name: 'icmpv6',
    socketFamily: 6,
    logPrefix: undefined,
    evictedCounter: undefined,
    admit,
    open: (key, p, socket, now) => ({
      key,
      ident: p.icmp.identifier,
      dst: Uint8Array.from(p.ip.dst),
      socket,
      subscription: undefined,
      guest: Uint8Array.from(p.ip.src),
      guestMac: Uint8Array.from(ethSource(p.ip.buf)),
      lastUsed: now,
      quotes: new Uint8Array(QUOTE_SLOTS * QUOTE_BYTES),
      quoteSeq: new Int32Array(QUOTE_SLOTS).fill(-1),
    }),
    forward,
    reply: (flow, m) => replyFrame(ctx, flow, m),
    error: (flow, m) => errorFrame(ctx, flow, m),
    flowName: (flow) => `echo id ${flow.ident} to ${ipv6ToString(flow.dst)}`,
    forbiddenWarning: (message) => `IPv6 ping to hosts other than the gateway is off: ${message}`,
  };
}

/** The guest's echo reply for the host's, or undefined when counted and dropped. */
function replyFrame(ctx: StackContext, flow: Flow, m: PingMessage): Buffer | undefined {
  const data = m.data;
  if (data.length < ICMPV6_HEADER || data[0] !== Icmpv6Type.EchoReply) {
    ctx.counters.add('icmpv6.nat.reply-malformed');
    return undefined;
  }
  if (m.from.length !== 16 || !ipv6Equals(m.from, 0, flow.dst)) {
    ctx.counters.add('icmpv6.nat.reply-wrong-source');
    return undefined;
  }
  flow.lastUsed = ctx.scheduler.now();
  const frame = ipv6Frame(flow.guestMac, ctx.gatewayMac, {
    src: flow.dst,
    dst: flow.guest,
    nextHeader: NextHeader.ICMPv6,
    payloadLength: data.length,
    hopLimit: m.ttl > 1 ? m.ttl - 1 : 64,
  });
  frame.set(data, IPV6_PAYLOAD_OFFSET);
  frame.writeUInt16BE(flow.ident, IPV6_PAYLOAD_OFFSET + 4);
  finishIcmpv6Checksum(frame, IPV6_PAYLOAD_OFFSET, data.length, flow.dst, flow.guest);
  ctx.counters.add('icmpv6.nat.replied');
  return frame;
}

/** The guest's ICMPv6 error for one the host got about a flow's request. */
function errorFrame(ctx: StackContext, flow: Flow, m: PingMessage): Buffer | undefined {
  const seq = m.data.length >= ICMPV6_HEADER ? (m.data[6]! << 8) | m.data[7]! : -1;
  const slot = seq < 0 ? -1 : flow.quoteSeq.indexOf(seq);
  const mapped = guestError(m);
  if (slot < 0 || mapped === undefined) {
    ctx.counters.add('icmpv6.nat.error-unmatched');
    return undefined;
  }
  const fromHost = m.origin === ErrorOrigin.Icmp6 && m.from.length === 16;
  const src = fromHost && !m.from.every((b) => b === 0) ? m.from : ctx.config.ipv6!.gateway;
  const quoted = flow.quotes.subarray(slot * QUOTE_BYTES, (slot + 1) * QUOTE_BYTES);
  const frame = ipv6Frame(flow.guestMac, ctx.gatewayMac, {
    src,
    dst: flow.guest,
    nextHeader: NextHeader.ICMPv6,
    payloadLength: ICMPV6_HEADER + QUOTE_BYTES,
  });
  const [type, code, rest] = mapped;
  writeIcmpv6(frame, IPV6_PAYLOAD_OFFSET, type, code, rest, quoted, src, flow.guest);
  ctx.counters.add('icmpv6.nat.error-relayed');
  return frame;
}

/** The ICMPv6 error (type, code, rest of header) the guest gets for a host one. */
function guestError(m: PingMessage): [number, number, number] | undefined {
  if (m.origin === ErrorOrigin.Icmp6) {
    switch (m.type) {
      case Icmpv6Type.DestinationUnreachable:
      case Icmpv6Type.TimeExceeded:
        return [m.type, m.code, 0];
      case Icmpv6Type.PacketTooBig:
      case Icmpv6Type.ParameterProblem:
        return [m.type, m.code, m.info >>> 0];
      default:
        return undefined;
    }
  }
  if (m.origin !== ErrorOrigin.Local) return undefined;
  const unreachable = Icmpv6Type.DestinationUnreachable;
  if (m.errno === errno.ENETUNREACH) return [unreachable, Icmpv6UnreachableCode.NoRoute, 0];
  if (m.errno === errno.EHOSTUNREACH) {
    return [unreachable, Icmpv6UnreachableCode.AddressUnreachable, 0];
  }
  if (m.errno === errno.EMSGSIZE) return [Icmpv6Type.PacketTooBig, 0, m.info >>> 0];
  return undefined;
}
