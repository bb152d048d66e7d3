/**
 * The virtual network's addresses, derived from a CIDR exactly as
 * slirp4netns derives them: gateway/host = network+2, DNS = network+3,
 * DHCP range network+15 .. network+30, the address `--configure` gives the
 * guest = network+100. Special addresses answer ARP with a MAC derived from
 * the address (52:55 followed by the four IPv4 bytes).
 */
import { ipv4ToString, parseIpv4, prefixMask, type Ipv4, type Mac } from './protocols/address.js';

export const DEFAULT_CIDR = '10.0.2.0/24';
export const DEFAULT_MTU = 1500;
export const MAX_MTU = 65521;

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

export function networkConfig(
  cidr = DEFAULT_CIDR,
  mtu = DEFAULT_MTU,
  flags: { disableDns?: boolean; disableHostLoopback?: boolean } = {},
): NetworkConfig {
  const { network, prefix } = parseCidr(cidr);
  const at = (n: number): Ipv4 => (network + n) >>> 0;
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
