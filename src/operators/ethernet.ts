/**
 * The first layer of the stack: validate the Ethernet header and route by
 * EtherType. Frames of a type without a route are counted as
 * `ethernet.unhandled-type` and dropped.
 */
import type { OperatorFunction } from 'rxjs';
import { checkEthernet, etherType } from '../protocols/ethernet.js';
import type { StackContext } from './context.js';
import { demux, type Routes } from './demux.js';

export function ethernetDemux(
  ctx: StackContext,
  routes: Routes<Buffer, Buffer>,
): OperatorFunction<Buffer, Buffer> {
  const key = (frame: Buffer): number => {
    checkEthernet(frame);
    return etherType(frame);
  };
  return demux(ctx, 'ethernet', key, routes, () => ctx.counters.add('ethernet.unhandled-type'));
}
