/**
 * Where a forwarded connection or datagram (TCP and UDP port forwarding
 * alike) comes from as the guest sees it.
 *
 * As with slirp4netns, the host client's own address and port, so that a
 * server in the guest sees who connected. A client the guest could not
 * answer through us (the host's loopback, "this network", multicast or
 * broadcast, or an address of the guest network itself, which the guest
 * would look for on its own link) is shown as the gateway, the host as the
 * guest knows it, keeping its port. When that source is already in use
 * toward the same guest port, a gateway port of 49152..65535 stands in,
 * chosen round robin.
 */
import { parseIpv4, type Ipv4 } from '../protocols/address.js';
import type { StackContext } from './context.js';

export interface ForwardSource {
  address: Ipv4;
  port: number;
}

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_PORTS = 65536 - EPHEMERAL_FIRST;

/** The client as an IPv4 address and port, from Node's text; undefined for anything else. */
export function forwardClient(address: string, port: number): ForwardSource | undefined {
  const text = address.startsWith('::ffff:') ? address.slice(7) : address;
  try {
    return { address: parseIpv4(text), port };
  } catch {
    return undefined;
  }
}

/** Whether the guest can answer `client` through us (see the module comment). */
export function guestCanAnswer(ctx: StackContext, client: Ipv4): boolean {
  const top = client >>> 24;
  if (top === 0 || top === 127 || top >= 224) return false;
  return (client & ctx.config.netmask) >>> 0 !== ctx.config.network;
}

/** One forwarder's round-robin cursor over the gateway's ports 49152..65535. */
export class EphemeralPorts {
  private next = 0;

  /** The next port `free` accepts, or undefined when none is. */
  find(free: (port: number) => boolean): number | undefined {
    for (let i = 0; i < EPHEMERAL_PORTS; i++) {
      const port = EPHEMERAL_FIRST + this.next;
      this.next = (this.next + 1) % EPHEMERAL_PORTS;
      if (free(port)) return port;
    }
    return undefined;
  }
}

/**
 * The source for `client`; `free(address, port)` says whether a source is
 * unused toward the guest port. Undefined when no gateway port is free.
 */
export function forwardSource(
  ctx: StackContext,
  client: ForwardSource | undefined,
  free: (address: Ipv4, port: number) => boolean,
  ports: EphemeralPorts,
): ForwardSource | undefined {
  const gateway = ctx.config.gateway;
  if (client !== undefined && client.port > 0) {
    const address = guestCanAnswer(ctx, client.address) ? client.address : gateway;
    if (free(address, client.port)) return { address, port: client.port };
  }
  const port = ports.find((p) => free(gateway, p));
  return port === undefined ? undefined : { address: gateway, port };
}
