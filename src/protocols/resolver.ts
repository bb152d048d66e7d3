/**
 * Where the DNS forwarder sends queries: the text forms it reads.
 *
 * - `resolvConfNameservers(text)`: the `nameserver` addresses of a
 *   resolv.conf (resolv.conf(5)), in order: one per line, `#` and `;`
 *   start comments, anything that is not an IPv4 or IPv6 address (an IPv6
 *   zone index `%eth0` is kept with it) is skipped.
 * - `parseDnsServer(text, defaultPort)`: `ADDR`, `ADDR:PORT`, `[ADDR6]` or
 *   `[ADDR6]:PORT`; a bare IPv6 address takes the default port. Throws
 *   ParseError `dns.server` with a message that names the text.
 *
 * Pure text handling: reading the file is the caller's.
 */
import { parseIpv4, parseIpv6 } from './address.js';
import { ParseError } from './errors.js';

export interface DnsServerAddress {
  address: string;
  port: number;
  family: 4 | 6;
}

function family(address: string): 4 | 6 | undefined {
  try {
    parseIpv4(address);
    return 4;
  } catch {
    // not IPv4
  }
  try {
    parseIpv6(address.replace(/%[^%]+$/, ''));
    return 6;
  } catch {
    return undefined;
  }
}

export function resolvConfNameservers(text: string): DnsServerAddress[] {
  const out: DnsServerAddress[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [keyword, address] = line.split(/\s+/);
    if (keyword !== 'nameserver' || address === undefined) continue;
    const f = family(address);
    if (f !== undefined) out.push({ address, port: 53, family: f });
  }
  return out;
}

export function parseDnsServer(text: string, defaultPort = 53): DnsServerAddress {
  const bad = (): never => {
    throw new ParseError('dns.server', `not an address or address:port: ${text}`);
  };
  let address = text;
  let port = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4port = /^([\d.]+):(\d+)$/.exec(text);
  if (bracketed) {
    address = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (v4port) {
    address = v4port[1]!;
    port = Number(v4port[2]);
  }
  const f = family(address);
  if (f === undefined || (bracketed && f !== 6)) bad();
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad();
  return { address, port, family: f! };
}
