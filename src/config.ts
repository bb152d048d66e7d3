/**
 * The virtual network's addresses, derived from a CIDR exactly as
 * slirp4netns derives them: gateway/host = network+2, DNS = network+3,
 * DHCP range network+15 .. network+30, the address `--configure` gives the
 * guest = network+100. Special addresses answer ARP with a MAC derived from
 * the address (52:55 followed by the four IPv4 bytes).
 *
 * With IPv6 (`-6`), `ipv6` holds the /64 prefix (default fd00::/64, or
 * `--cidr6`), the gateway prefix::2 and DNS prefix::3 as slirp4netns has
 * them, and the router's link-local address, fe80:: with the interface
 * identifier of the gateway's MAC (modified EUI-64, RFC 4291 2.5.1). The
 * guest picks its own address by SLAAC from our router advertisement.
 */
import {
  ipv4ToString,
  ipv6ToString,
  parseIpv4,
  parseIpv6,
  prefixMask,
  type Ipv4,
  type Ipv6,
  type Mac,
} from './protocols/address.js';

export const DEFAULT_CIDR = '10.0.2.0/24';
export const DEFAULT_MTU = 1500;
export const MAX_MTU = 65521;
export const DEFAULT_CIDR6 = 'fd00::/64';
/** RFC 8200 5: no IPv6 link has a smaller MTU. */
export const MIN_MTU_IPV6 = 1280;

/** A bad setting; `message` is the exact text slirp4netns prints. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface NetworkConfig {
  mtu: number;
  network: Ipv4;
  prefix: number;
  netmask: Ipv4;
  gateway: Ipv4;
  dns: Ipv4;
  dhcpBegin: Ipv4;
  dhcpEnd: Ipv4;
  recommended: Ipv4;
  /** Whether network+3 answers as our DNS address (false: --disable-dns). */
  dnsEnabled: boolean;
  /** Whether the gateway reaches the host's loopback (false: --disable-host-loopback). */
  hostLoopback: boolean;
  /** IPv6 addresses; undefined unless IPv6 is enabled (`-6`). */
  ipv6?: Ipv6Config;
  /**
   * Source addresses for the host sockets of the NAT (--outbound-addr,
   * --outbound-addr6), for TCP and UDP alike; the kernel's choice if unset.
   */
  outbound?: { v4?: string; v6?: string };
}

export interface Ipv6Config {
  /** The /64 prefix advertised for SLAAC, host bits zero. */
  prefix: Ipv6;
  prefixLength: number;
  /** prefix::2, reaching the host's ::1 (unless --disable-host-loopback). */
  gateway: Ipv6;
  /** prefix::3. */
  dns: Ipv6;
  /** The router's link-local address, the source of its advertisements. */
  linkLocal: Ipv6;
}

/** Parses `--cidr`, with slirp4netns's three error texts. */
export function parseCidr(text: string): { network: Ipv4; prefix: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  let address: Ipv4;
  try {
    if (!m) throw new Error();
    address = parseIpv4(m[1]!);
  } catch {
    throw new ConfigError(`invalid CIDR: ${text}`);
  }
  const prefix = Number(m[2]);
  if (prefix < 1 || prefix > 25) throw new ConfigError('prefix length needs to be 1-25');
  const network = (address & prefixMask(prefix)) >>> 0;
  if (network !== address) {
    const example = `${ipv4ToString(network)}/${prefix}`;
    throw new ConfigError(`CIDR needs to be a network address like ${example}, not like ${text}`);
  }
  return { network, prefix };
}

/** Parses `--mtu`, with slirp4netns's error text. */
export function parseMtu(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0 || Number(text) > MAX_MTU) {
    throw new ConfigError(`MTU must be a positive integer (< ${MAX_MTU + 1})`);
  }
  return Number(text);
}

/**
 * Parses `--cidr6`: a /64 network prefix (SLAAC needs 64 bits of interface
 * identifier, RFC 4862 5.5.3), unicast and neither link-local nor
 * loopback.
 */
export function parseCidr6(text: string): { prefix: Ipv6; prefixLength: number } {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(text);
  let prefix: Ipv6;
  try {
    if (!m) throw new Error();
    prefix = parseIpv6(m[1]!);
  } catch {
    throw new ConfigError(`invalid CIDR6: ${text}`);
  }
  if (Number(m[2]) !== 64) throw new ConfigError('IPv6 prefix length needs to be 64');
  if (prefix.subarray(8).some((b) => b !== 0)) {
    const network = Uint8Array.from(prefix).fill(0, 8);
    const example = `${ipv6ToString(network)}/64`;
    throw new ConfigError(`CIDR6 needs to be a network address like ${example}, not like ${text}`);
  }
  const multicast = prefix[0] === 0xff;
  const linkLocal = prefix[0] === 0xfe && (prefix[1]! & 0xc0) === 0x80;
  const zero = prefix.subarray(0, 8).every((b) => b === 0);
  if (multicast || linkLocal || zero) {
    throw new ConfigError(`CIDR6 needs to be a unicast prefix outside fe80::/10, not ${text}`);
  }
  return { prefix, prefixLength: 64 };
}

/** The interface identifier of `mac` in modified EUI-64 form (RFC 4291 appendix A). */
export function eui64(mac: Mac): Uint8Array {
  return Uint8Array.of(mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!);
}

export function ipv6Config(cidr6: string, routerMac: Mac): Ipv6Config {
  const { prefix, prefixLength } = parseCidr6(cidr6);
  const at = (n: number): Ipv6 => {
    const a = Uint8Array.from(prefix);
    a[15] = n;
    return a;
  };
  const linkLocal = parseIpv6('fe80::');
  linkLocal.set(eui64(routerMac), 8);
  return { prefix, prefixLength, gateway: at(2), dns: at(3), linkLocal };
}

export interface NetworkFlags {
  disableDns?: boolean;
  disableHostLoopback?: boolean;
  /** Enable IPv6 (`-6`) with this prefix, or DEFAULT_CIDR6 when true. */
  ipv6?: boolean | string;
}

export function networkConfig(
  cidr = DEFAULT_CIDR,
  mtu = DEFAULT_MTU,
  flags: NetworkFlags = {},
): NetworkConfig {
  const { network, prefix } = parseCidr(cidr);
  const at = (n: number): Ipv4 => (network + n) >>> 0;
  let ipv6: Ipv6Config | undefined;
  if (flags.ipv6 !== undefined && flags.ipv6 !== false) {
    const cidr6 = flags.ipv6 === true ? DEFAULT_CIDR6 : flags.ipv6;
    ipv6 = ipv6Config(cidr6, specialMac(at(2)));
    if (mtu < MIN_MTU_IPV6) {
      throw new ConfigError(`MTU must be at least ${MIN_MTU_IPV6} with IPv6`);
    }
  }
  return {
    mtu,
    network,
    prefix,
    netmask: prefixMask(prefix),
    gateway: at(2),
    dns: at(3),
    dhcpBegin: at(15),
    dhcpEnd: at(30),
    recommended: at(100),
    dnsEnabled: !flags.disableDns,
    hostLoopback: !flags.disableHostLoopback,
    ...(ipv6 && { ipv6 }),
  };
}

/** The MAC address the stack answers with for one of its own addresses. */
export function specialMac(address: Ipv4): Mac {
  return Uint8Array.of(
    0x52,
    0x55,
    address >>> 24,
    (address >>> 16) & 0xff,
    (address >>> 8) & 0xff,
    address & 0xff,
  );
}
