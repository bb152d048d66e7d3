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
 * For IPv6 the same holds with the IPv6 gateway (prefix::2, and the
 * router's link-local address) mapped to ::1; the unspecified, loopback,
 * multicast, link-local and IPv4-mapped addresses, and the rest of the
 * guest's own /64 (on its link, where nobody else lives), are martians.
 *
 * The DNS address (network+3, prefix::3) is not mapped here: the DNS forwarder owns
 * it unless --disable-dns, and then it is an ordinary address.
 */
import {
  ipv4ToString,
  ipv6Equals,
  ipv6ToString,
  type Ipv4,
  type Ipv6,
} from '../protocols/address.js';
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

export function natTargetV6(ctx: StackContext, dst: Ipv6): NatTarget {
  const v6 = ctx.config.ipv6;
  if (v6 === undefined) return { kind: 'unreachable', reason: 'martian' };
  if (ipv6Equals(dst, 0, v6.gateway) || ipv6Equals(dst, 0, v6.linkLocal)) {
    return ctx.config.hostLoopback
      ? { kind: 'host', address: '::1' }
      : { kind: 'unreachable', reason: 'host-loopback-disabled' };
  }
  if (isMartianV6(dst) || inPrefix64(dst, v6.prefix)) {
    return { kind: 'unreachable', reason: 'martian' };
  }
  return { kind: 'host', address: ipv6ToString(dst) };
}

function isMartianV6(a: Ipv6): boolean {
  const multicast = a[0] === 0xff;
  const linkLocal = a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
  const upper = a.subarray(0, 10).every((b) => b === 0);
  // ::, ::1, ::ffff:a.b.c.d (and the deprecated IPv4-compatible ::a.b.c.d).
  const zeroOrMapped =
    upper && ((a[10] === 0 && a[11] === 0) || (a[10] === 0xff && a[11] === 0xff));
  return multicast || linkLocal || zeroOrMapped;
}

function inPrefix64(a: Ipv6, prefix: Ipv6): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== prefix[i]) return false;
  return true;
}
