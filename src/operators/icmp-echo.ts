/**
 * The gateway's and DNS address's own ping answer: an ICMP echo request to
 * one of the stack's addresses gets its reply straight from here (the
 * request's bytes with type 0, RFC 792). In the stack, echo to other hosts
 * goes to the ping-socket NAT instead (icmp-nat.ts, `icmpv4Route`); this
 * operator alone, or a stack without ping sockets, counts it as
 * `icmp.echo.not-local` and drops it. Other ICMP types from the guest are
 * counted as `icmp.unhandled-type`.
 */
import type { OperatorFunction } from 'rxjs';
import { ethSource } from '../protocols/ethernet.js';
import { Icmpv4Message, writeEchoReply } from '../protocols/icmpv4.js';
import { IpProtocol, type Ipv4Packet } from '../protocols/ipv4.js';
import { isLocalAddress, localMac, type StackContext } from './context.js';
import { IPV4_PAYLOAD_OFFSET, ipv4Frame } from './frames.js';
import { handler } from './handler.js';

export function icmpEchoResponder(ctx: StackContext): OperatorFunction<Ipv4Packet, Buffer> {
  return handler<Ipv4Packet, Buffer>(ctx, 'icmp', (packet, emit) => {
    const request = Icmpv4Message.parse(packet.buf, packet.payloadOffset, packet.payloadLength);
    if (!request.isEchoRequest) {
      ctx.counters.add('icmp.unhandled-type');
      return;
    }
    if (!isLocalAddress(ctx, packet.dst)) {
      ctx.counters.add('icmp.echo.not-local');
      return;
    }
    const reply = ipv4Frame(ethSource(packet.buf), localMac(ctx, packet.dst), {
      src: packet.dst,
      dst: packet.src,
      protocol: IpProtocol.ICMP,
      payloadLength: packet.payloadLength,
      tos: packet.tos,
    });
    writeEchoReply(request, reply, IPV4_PAYLOAD_OFFSET);
    ctx.counters.add('icmp.echo.replied');
    emit(reply);
  });
}
