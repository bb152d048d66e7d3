/**
 * IPv4 input: validate the header of an Ethernet frame's payload and route
 * the packet by protocol. A packet's view keeps the whole frame, so a
 * handler can still read the guest's MAC at buf[6..12].
 *
 * Fragments are reassembled (operators/fragments.ts) before routing, so
 * every handler sees whole datagrams.
 */
import { pipe, type OperatorFunction } from 'rxjs';
import { ETH_HEADER_LENGTH } from '../protocols/ethernet.js';
import { Ipv4Packet } from '../protocols/ipv4.js';
import type { StackContext } from './context.js';
import { demux, type Routes } from './demux.js';
import { ipv4Reassembly } from './fragments.js';
import { handler } from './handler.js';

export function ipv4Input(ctx: StackContext): OperatorFunction<Buffer, Ipv4Packet> {
  return pipe(
    handler<Buffer, Ipv4Packet>(ctx, 'ipv4', (frame, emit) => {
      emit(Ipv4Packet.parse(frame, ETH_HEADER_LENGTH));
    }),
    ipv4Reassembly(ctx),
  );
}

export function ipv4Demux(
  ctx: StackContext,
  routes: Routes<Ipv4Packet, Buffer>,
): OperatorFunction<Buffer, Buffer> {
  const unrouted = (p: Ipv4Packet): void => {
    ctx.counters.add('ipv4.unhandled-protocol');
    if (ctx.log.enabled('debug')) ctx.log.debug(`ipv4: no handler for protocol ${p.protocol}`);
  };
  return pipe(
    ipv4Input(ctx),
    demux(ctx, 'ipv4', (p) => p.protocol, routes, unrouted),
  );
}
