/**
 * IPv4 input: validate the header of an Ethernet frame's payload and route
 * the packet by protocol. A packet's view keeps the whole frame, so a
 * handler can still read the guest's MAC at buf[6..12].
 *
 * Fragments are reassembled (operators/fragments.ts) before routing, so
 * every handler sees whole datagrams; `ipv4Demux` sends the guest the ICMP
 * time exceeded about a datagram whose reassembly timed out, among the
 * routes' own frames.
 */
import { pipe, type OperatorFunction } from 'rxjs';
import { ETH_HEADER_LENGTH } from '../protocols/ethernet.js';
import { Ipv4Packet } from '../protocols/ipv4.js';
import type { StackContext } from './context.js';
import { demux, type Routes } from './demux.js';
import { inputThenRoute, ipv4Reassembly, type ReassemblyOperatorOptions } from './fragments.js';
import { handler } from './handler.js';

/**
 * Validated, reassembled packets. The ICMP time exceeded about a datagram
 * whose reassembly timed out goes to `options.toGuest`, if given.
 */
export function ipv4Input(
  ctx: StackContext,
  options: ReassemblyOperatorOptions = {},
): OperatorFunction<Buffer, Ipv4Packet> {
  return pipe(
    handler<Buffer, Ipv4Packet>(ctx, 'ipv4', (frame, emit) => {
      emit(Ipv4Packet.parse(frame, ETH_HEADER_LENGTH));
    }),
    ipv4Reassembly(ctx, options),
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
  return inputThenRoute(
    (toGuest) => ipv4Input(ctx, { toGuest }),
    demux(ctx, 'ipv4', (p) => p.protocol, routes, unrouted),
  );
}
