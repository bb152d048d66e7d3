/**
 * ICMP echo to hosts other than the stack's own addresses (RFC 792), sent
 * from the host through unprivileged ping sockets (streams/ping.ts). This
 * is the IPv4 half; ICMPv6 echo is icmpv6-nat.ts, on the same design.
 *
 * Theory of operation. A flow is one (guest identifier, destination) pair
 * and owns one host ping socket. The guest's echo request goes out on it
 * unchanged but for two things the kernel does: it replaces the
 * identifier with the socket's own, and it sends with the guest's TTL less
 * one (we are a router hop). A reply on the socket belongs to that flow and
 * nothing else, so mapping back is putting the guest's identifier in again:
 * the guest gets its sequence number and payload as it sent them, from the
 * destination's address, with the checksum recomputed.
 *
 * ICMP errors the host receives about a flow's requests (host unreachable,
 * TTL exceeded on the way, fragmentation needed) come from the socket's
 * error queue with the sequence number they concern. Each flow keeps the
 * first bytes of its last QUOTE_SLOTS requests (IP header and ICMP header,
 * what an ICMP error quotes); the matching one is quoted in the error the
 * guest receives, sent from the host that reported it. A failed send
 * (ENETUNREACH, EHOSTUNREACH) becomes the matching unreachable from the
 * gateway, and so do the NAT map's `unreachable` targets (nat.ts); a
 * request whose TTL would expire here gets time exceeded from the gateway.
 *
 * The flow table is ping-nat.ts's, shared with ICMPv6 (icmpv6-nat.ts):
 * flows idle for `idleMs` are closed by a sweep on ctx.scheduler every
 * idleMs/2 (so within 1.5 idleMs); at most `maxFlows` are open, and opening
 * one more closes the least recently used (`icmp.nat.flow-evicted`). When
 * the kernel forbids ping sockets (net.ipv4.ping_group_range), one warning
 * says how to allow them, and requests are counted as
 * `icmp.echo.no-ping-socket` and dropped; opening is retried at most every
 * 10 s so that a range opened later takes effect.
 *
 * Replies longer than the guest's MTU (the request came in fragments)
 * leave here whole, without DF, and the stack's fragmenter splits them.
 *
 * Not done: echo to the guest network's broadcast address is dropped
 * (`icmp.echo.broadcast`).
 */
import type { OperatorFunction } from 'rxjs';
import { constants } from 'node:os';
import { ipv4ToString, readIpv4, writeIpv4, type Ipv4 } from '../protocols/address.js';
import { finish, sum } from '../protocols/checksum.js';
import { ethSource } from '../protocols/ethernet.js';
import {
  ICMPV4_HEADER,
  Icmpv4Message,
  Icmpv4Type,
  TimeExceededCode,
  UnreachableCode,
  icmpv4ErrorLength,
} from '../protocols/icmpv4.js';
import { IPV4_MIN_HEADER, IpProtocol, type Ipv4Packet } from '../protocols/ipv4.js';
import {
  ErrorOrigin,
  type PingMessage,
  type PingSocket,
  type PingSockets,
} from '../streams/ping.js';
import { isLocalAddress, type StackContext } from './context.js';
import { demux } from './demux.js';
import { IPV4_PAYLOAD_OFFSET, icmpErrorFrame, ipv4Frame } from './frames.js';
import { icmpEchoResponder } from './icmp-echo.js';
import { natTargetV4 } from './nat.js';
import {
  pingNatFlows,
  type PingFlow,
  type PingNatFamily,
  type PingNatOptions,
} from './ping-nat.js';

export type IcmpNatOptions = PingNatOptions;

const QUOTE_SLOTS = 8;
/** The longest IPv4 header and the 8 bytes of ICMP header an error quotes. */
const QUOTE_BYTES = 60 + 8;
const MAX_IPV4_LENGTH = 0xffff;
/** Offsets in an ICMP header: the second word, which is identifier and sequence in echo. */
const REST = 4;
const IDENT = 4;
const CHECKSUM = 2;
const { errno } = constants;

interface Flow extends PingFlow<number> {
  readonly ident: number;
  readonly dst: Ipv4;
  readonly dstBytes: Uint8Array;
  guestSrc: Ipv4;
  readonly guestMac: Buffer;
  /** QUOTE_SLOTS copies of a request's first bytes, by sequence number. */
  readonly quotes: Buffer;
  readonly quoteSeq: Int32Array;
  readonly quoteLength: Uint8Array;
}

const LOCAL = 0;
const OTHER = 1;

/**
 * The stack's ICMPv4 route: echo to the stack's own addresses is answered
 * by icmpEchoResponder; with a ping-socket layer in the context, ICMP to
 * any other address goes to icmpEchoNat. Without one, the responder counts
 * such requests as `icmp.echo.not-local`.
 */
export function icmpv4Route(ctx: StackContext): OperatorFunction<Ipv4Packet, Buffer> {
  const sockets = ctx.pingSockets;
  if (sockets === undefined) return icmpEchoResponder(ctx);
  const routes = new Map([
    [LOCAL, icmpEchoResponder(ctx)],
    [OTHER, icmpEchoNat(ctx, sockets)],
  ]);
  const key = (p: Ipv4Packet): number => (isLocalAddress(ctx, p.dst) ? LOCAL : OTHER);
  return demux(ctx, 'icmp', key, routes, () => undefined);
}

/** Echo requests to other hosts, through one ping socket per flow (ping-nat.ts). */
export function icmpEchoNat(
  ctx: StackContext,
  sockets: PingSockets,
  options: IcmpNatOptions = {},
): OperatorFunction<Ipv4Packet, Buffer> {
  return pingNatFlows(ctx, sockets, options, (emit) => icmpNatFamily(ctx, emit));
}

/** The ICMPv4 half of the ping-socket NAT. */
function icmpNatFamily(
  ctx: StackContext,
  emit: (frame: Buffer) => void,
): PingNatFamily<Ipv4Packet, number, Flow> {
  const broadcast = (ctx.config.network | ~ctx.config.netmask) >>> 0;
  // The request admit parsed, for open and forward right after.
  let request: Icmpv4Message | undefined;

  const errorToGuest = (packet: Ipv4Packet, type: number, code: number, counter: string) => {
    const frame = icmpErrorFrame(ctx, packet, type, code);
    if (frame === undefined) {
      ctx.counters.add('icmp.echo.martian');
      return;
    }
    ctx.counters.add(counter);
    emit(frame);
  };

  const admit = (packet: Ipv4Packet): number | undefined => {
    request = Icmpv4Message.parse(packet.buf, packet.payloadOffset, packet.payloadLength);
    if (!request.isEchoRequest) {
      ctx.counters.add('icmp.unhandled-type');
      return undefined;
    }
    if (packet.dst === broadcast) {
      ctx.counters.add('icmp.echo.broadcast');
      return undefined;
    }
    if (natTargetV4(ctx, packet.dst).kind === 'unreachable') {
      const unreachable = Icmpv4Type.DestinationUnreachable;
      errorToGuest(packet, unreachable, UnreachableCode.Net, 'icmp.echo.unreachable');
      return undefined;
    }
    if (packet.ttl <= 1) {
      const code = TimeExceededCode.TtlExceeded;
      errorToGuest(packet, Icmpv4Type.TimeExceeded, code, 'icmp.echo.ttl-exceeded');
      return undefined;
    }
    return packet.dst * 0x10000 + request.identifier;
  };

  const forward = (flow: Flow, packet: Ipv4Packet): void => {
    const echo = request!;
    flow.guestSrc = packet.src;
    flow.guestMac.set(ethSource(packet.buf));
    keepQuote(flow, packet, echo.sequence);
    const sent = flow.socket.send(flow.dstBytes, echo.bytes, packet.ttl - 1);
    if (sent >= 0) ctx.counters.add('icmp.echo.forwarded');
    else onSendFailure(packet, -sent);
  };

  const onSendFailure = (packet: Ipv4Packet, code: number): void => {
    const unreachable = Icmpv4Type.DestinationUnreachable;
    if (code === errno.ENETUNREACH) {
      errorToGuest(packet, unreachable, UnreachableCode.Net, 'icmp.echo.net-unreachable');
    } else if (code === errno.EHOSTUNREACH) {
      errorToGuest(packet, unreachable, UnreachableCode.Host, 'icmp.echo.host-unreachable');
    } else if (code === errno.EAGAIN || code === errno.ENOBUFS) {
      ctx.counters.add('icmp.echo.send-busy');
    } else {
      ctx.counters.add('icmp.echo.send-failed');
      if (ctx.log.enabled('debug')) ctx.log.debug(`icmp-nat: send failed: errno ${code}`);
    }
  };

  return {
    name: 'icmp',
    socketFamily: 4,
    logPrefix: 'icmp-nat',
    evictedCounter: 'icmp.nat.flow-evicted',
    admit,
    open: (key, packet, socket, now) => newFlow(key, request!.identifier, packet.dst, socket, now),
    forward,
    reply: (flow, m) => replyFrame(ctx, flow, m),
    error: (flow, m) => errorFrame(ctx, flow, m),
    flowName,
    forbiddenWarning: (message) =>
      `ping to hosts other than the gateway is off: ${message}. ` +
      'To allow it, widen the range to include this group, e.g. ' +
      '`sysctl -w net.ipv4.ping_group_range="0 2147483647"`. ' +
      'Ping to the gateway and DNS addresses still works.',
  };
}

/** The guest's echo reply for the host's, or undefined when counted and dropped. */
function replyFrame(ctx: StackContext, flow: Flow, m: PingMessage): Buffer | undefined {
  const data = m.data;
  if (data.length < ICMPV4_HEADER || data[0] !== Icmpv4Type.EchoReply) {
    ctx.counters.add('icmp.nat.reply-malformed');
    return undefined;
  }
  if (m.from.length !== 4 || readIpv4(m.from, 0) !== flow.dst) {
    ctx.counters.add('icmp.nat.reply-wrong-source');
    return undefined;
  }
  if (IPV4_MIN_HEADER + data.length > MAX_IPV4_LENGTH) {
    ctx.counters.add('icmp.nat.reply-too-big');
    return undefined;
  }
  flow.lastUsed = ctx.scheduler.now();
  const frame = ipv4Frame(flow.guestMac, ctx.gatewayMac, {
    src: flow.dst,
    dst: flow.guestSrc,
    protocol: IpProtocol.ICMP,
    payloadLength: data.length,
    ttl: m.ttl > 0 ? Math.max(1, m.ttl - 1) : 64,
  });
  frame.set(data, IPV4_PAYLOAD_OFFSET);
  restoreIdentifier(frame, IPV4_PAYLOAD_OFFSET, data.length, flow.ident);
  ctx.counters.add('icmp.nat.replied');
  return frame;
}

/** The guest's ICMP error for one the host got about a flow's request. */
function errorFrame(ctx: StackContext, flow: Flow, m: PingMessage): Buffer | undefined {
  const seq = m.data.length >= ICMPV4_HEADER ? (m.data[6]! << 8) | m.data[7]! : -1;
  const slot = flow.quoteSeq.indexOf(seq);
  if (seq < 0 || slot < 0) {
    ctx.counters.add('icmp.nat.error-unmatched');
    return undefined;
  }
  const mapped = guestError(m);
  if (mapped === undefined) {
    ctx.counters.add('icmp.nat.error-unmapped');
    return undefined;
  }
  const reporter = m.origin === ErrorOrigin.Icmp && m.from.length === 4 ? readIpv4(m.from, 0) : 0;
  const at = slot * QUOTE_BYTES;
  const quoted = flow.quotes.subarray(at, at + flow.quoteLength[slot]!);
  const frame = ipv4Frame(flow.guestMac, ctx.gatewayMac, {
    src: reporter !== 0 ? reporter : ctx.config.gateway,
    dst: flow.guestSrc,
    protocol: IpProtocol.ICMP,
    payloadLength: ICMPV4_HEADER + quoted.length,
  });
  const [type, code, rest] = mapped;
  writeQuotedError(frame, IPV4_PAYLOAD_OFFSET, type, code, quoted, rest);
  ctx.counters.add('icmp.nat.error-relayed');
  return frame;
}

function newFlow(key: number, ident: number, dst: Ipv4, socket: PingSocket, now: number): Flow {
  const dstBytes = new Uint8Array(4);
  writeIpv4(dstBytes, 0, dst);
  return {
    key,
    ident,
    dst,
    dstBytes,
    socket,
    subscription: undefined,
    guestSrc: 0,
    guestMac: Buffer.alloc(6),
    lastUsed: now,
    quotes: Buffer.alloc(QUOTE_SLOTS * QUOTE_BYTES),
    quoteSeq: new Int32Array(QUOTE_SLOTS).fill(-1),
    quoteLength: new Uint8Array(QUOTE_SLOTS),
  };
}

/** Copies what an ICMP error about this request quotes into the flow's ring. */
function keepQuote(flow: Flow, packet: Ipv4Packet, seq: number): void {
  const slot = seq % QUOTE_SLOTS;
  const length = icmpv4ErrorLength(packet) - ICMPV4_HEADER;
  flow.quotes.set(packet.buf.subarray(packet.offset, packet.offset + length), slot * QUOTE_BYTES);
  flow.quoteLength[slot] = length;
  flow.quoteSeq[slot] = seq;
}

/**
 * Writes an ICMP error whose quoted datagram is `quoted` (kept by
 * keepQuote): what writeIcmpv4Error writes, for a request that is gone by
 * the time the host hears of its error. The unit tests hold the two to the
 * same bytes.
 */
function writeQuotedError(
  out: Buffer,
  at: number,
  type: number,
  code: number,
  quoted: Uint8Array,
  rest: number,
): void {
  out[at] = type;
  out[at + 1] = code;
  out.writeUInt16BE(0, at + CHECKSUM);
  out.writeUInt32BE(rest >>> 0, at + REST);
  out.set(quoted, at + ICMPV4_HEADER);
  out.writeUInt16BE(finish(sum(out, at, ICMPV4_HEADER + quoted.length)), at + CHECKSUM);
}

/** Puts the guest's identifier back into an echo reply and recomputes its checksum. */
function restoreIdentifier(frame: Buffer, at: number, length: number, ident: number): void {
  frame[at + IDENT] = ident >>> 8;
  frame[at + IDENT + 1] = ident & 0xff;
  frame[at + CHECKSUM] = 0;
  frame[at + CHECKSUM + 1] = 0;
  const c = finish(sum(frame, at, length));
  frame[at + CHECKSUM] = c >>> 8;
  frame[at + CHECKSUM + 1] = c & 0xff;
}

/** The ICMP error (type, code, second word) the guest gets for a host one. */
function guestError(m: PingMessage): [number, number, number] | undefined {
  if (m.origin === ErrorOrigin.Icmp) {
    switch (m.type) {
      case Icmpv4Type.DestinationUnreachable:
        return [
          m.type,
          m.code,
          m.code === UnreachableCode.FragmentationNeeded ? m.info & 0xffff : 0,
        ];
      case Icmpv4Type.TimeExceeded:
        return [m.type, m.code, 0];
      case Icmpv4Type.ParameterProblem:
        return [m.type, m.code, (m.info & 0xff) << 24];
      default:
        return undefined;
    }
  }
  if (m.origin !== ErrorOrigin.Local) return undefined;
  const unreachable = Icmpv4Type.DestinationUnreachable;
  if (m.errno === errno.ENETUNREACH) return [unreachable, UnreachableCode.Net, 0];
  if (m.errno === errno.EHOSTUNREACH) return [unreachable, UnreachableCode.Host, 0];
  if (m.errno === errno.EMSGSIZE) {
    return [unreachable, UnreachableCode.FragmentationNeeded, m.info & 0xffff];
  }
  return undefined;
}

function flowName(flow: Flow): string {
  return `echo id ${flow.ident} to ${ipv4ToString(flow.dst)}`;
}
