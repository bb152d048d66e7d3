/**
 * Where a guest's flow goes on the host: the NAT address map shared by TCP,
 * UDP and ICMP.
 *
 * - the gateway (network+2) is the host itself: 127.0.0.1 (::1 for the
 *   IPv6 gateway), unless --disable-host-loopback, when the guest is told
 *   the network is unreachable (ICMP net unreachable, so connect() fails
 *   with ENETUNREACH as with slirp4netns);
 * - every other destination is reached at its own address through the
 *   host's routing, from an ordinary socket.
 *
 * The DNS address (network+3) is not mapped here: the DNS forwarder owns
 * it unless --disable-dns, and then it is an ordinary address.
 */
import { ipv4ToString, type Ipv4 } from '../protocols/address.js';
import type { StackContext } from './context.js';

export type NatTarget =
  | { kind: 'host'; address: string }
  | { kind: 'unreachable'; reason: 'host-loopback-disabled' | 'martian' };

const LOOPBACK_NET = 0x7f000000;

export function natTargetV4(ctx: StackContext, dst: Ipv4): NatTarget {
  if (dst === ctx.config.gateway) {
    return ctx.config.hostLoopback
      ? { kind: 'host', address: '127.0.0.1' }
      : { kind: 'unreachable', reason: 'host-loopback-disabled' };
  }
  // Addresses no host socket may reach on the guest's behalf: "this
  // network", loopback, multicast, broadcast.
  const top = dst >>> 24;
  if (top === 0 || (dst & 0xff000000) >>> 0 === LOOPBACK_NET || top >= 224) {
    return { kind: 'unreachable', reason: 'martian' };
  }
  return { kind: 'host', address: ipv4ToString(dst) };
}
