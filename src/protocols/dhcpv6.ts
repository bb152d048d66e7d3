/**
 * Stateless DHCPv6 (RFC 8415, as RFC 3736 profiled it): the guest gets its
 * address by SLAAC and asks only for other configuration, here the DNS
 * servers (RFC 3646, option 23), with an INFORMATION-REQUEST.
 *
 * Interface:
 * - `parseDhcpv6(buf, offset, length)` reads a client/server message:
 *   type, transaction id, options in order, and the typed ones (client and
 *   server identifiers, option request list, elapsed time, whether an IA
 *   option is present, DNS servers). ParseError codes: `dhcpv6.truncated`,
 *   `dhcpv6.bad-option`, `dhcpv6.relay` (relay messages are not handled).
 * - `encodeDhcpv6(repr)` writes a message from type, transaction id and
 *   options in the order given.
 * - `duidLl(mac)` makes a DUID-LL (RFC 8415 11.4) for the server.
 * - `new Dhcpv6InfoServer({ serverDuid, dns })`, `handle(message)` returns
 *   `{ kind: 'reply', message, payload }` for an INFORMATION-REQUEST: a
 *   REPLY with the same transaction id, our server identifier, the
 *   client's identifier echoed, and the DNS servers option when any are
 *   configured; or `{ kind: 'none', reason }`. The reply goes back to the
 *   request's source address and port (546), which the caller knows.
 *
 * Not done: stateful service (SOLICIT, REQUEST, RENEW ... get no reply,
 * reason `dhcpv6.stateful-unsupported`; the router advertisement should
 * say M=0, O=1), relay agents, domain search list (option 24),
 * information refresh time (option 32), reconfigure, authentication.
 */
import type { Ipv6, Mac } from './address.js';
import { ParseError, need } from './errors.js';

export const DHCPV6_CLIENT_PORT = 546;
export const DHCPV6_SERVER_PORT = 547;

export const Dhcpv6MessageType = {
  Solicit: 1,
  Advertise: 2,
  Request: 3,
  Confirm: 4,
  Renew: 5,
  Rebind: 6,
  Reply: 7,
  Release: 8,
  Decline: 9,
  Reconfigure: 10,
  InformationRequest: 11,
  RelayForward: 12,
  RelayReply: 13,
} as const;

export const Dhcpv6Option = {
  ClientId: 1,
  ServerId: 2,
  IaNa: 3,
  IaTa: 4,
  IaAddr: 5,
  OptionRequest: 6,
  Preference: 7,
  ElapsedTime: 8,
  StatusCode: 13,
  RapidCommit: 14,
  DnsServers: 23,
  DomainList: 24,
  IaPd: 25,
} as const;

const HEADER = 4;

export type Dhcpv6OptionEntry = readonly [code: number, value: Uint8Array];

export interface Dhcpv6Repr {
  type: number;
  /** 24 bits. */
  transactionId: number;
  options: readonly Dhcpv6OptionEntry[];
}

export interface Dhcpv6Message extends Dhcpv6Repr {
  clientId: Uint8Array | undefined;
  serverId: Uint8Array | undefined;
  /** Option codes the client asks for (option 6). */
  requestedOptions: number[];
  /** Hundredths of a second (option 8). */
  elapsedTime: number | undefined;
  /** An IA_NA, IA_TA or IA_PD option is present. */
  hasIa: boolean;
  dnsServers: Ipv6[];
}

export function parseDhcpv6(
  buf: Uint8Array,
  offset = 0,
  length = buf.length - offset,
): Dhcpv6Message {
  if (length < HEADER) throw new ParseError('dhcpv6.truncated');
  need(buf, offset, length, 'dhcpv6.truncated');
  const type = buf[offset]!;
  if (type === Dhcpv6MessageType.RelayForward || type === Dhcpv6MessageType.RelayReply) {
    throw new ParseError('dhcpv6.relay');
  }
  const transactionId = (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!;
  const options: Dhcpv6OptionEntry[] = [];
  const end = offset + length;
  for (let i = offset + HEADER; i < end;) {
    if (i + 4 > end) throw new ParseError('dhcpv6.truncated');
    const code = (buf[i]! << 8) | buf[i + 1]!;
    const len = (buf[i + 2]! << 8) | buf[i + 3]!;
    if (i + 4 + len > end) throw new ParseError('dhcpv6.truncated');
    options.push([code, buf.slice(i + 4, i + 4 + len)]);
    i += 4 + len;
  }
  return { type, transactionId, options, ...typedOptions(options) };
}

function typedOptions(options: readonly Dhcpv6OptionEntry[]) {
  const first = (code: number) => options.find(([c]) => c === code)?.[1];
  const bad = (what: string): never => {
    throw new ParseError('dhcpv6.bad-option', `dhcpv6.bad-option: ${what}`);
  };
  const oro = first(Dhcpv6Option.OptionRequest);
  if (oro !== undefined && oro.length % 2 !== 0) bad('option request length');
  const elapsed = first(Dhcpv6Option.ElapsedTime);
  if (elapsed !== undefined && elapsed.length !== 2) bad('elapsed time length');
  const dns = first(Dhcpv6Option.DnsServers);
  if (dns !== undefined && dns.length % 16 !== 0) bad('DNS servers length');
  const clientId = first(Dhcpv6Option.ClientId);
  if (clientId !== undefined && clientId.length < 2) bad('client identifier length');
  const serverId = first(Dhcpv6Option.ServerId);
  if (serverId !== undefined && serverId.length < 2) bad('server identifier length');
  const ia: number[] = [Dhcpv6Option.IaNa, Dhcpv6Option.IaTa, Dhcpv6Option.IaPd];
  return {
    clientId,
    serverId,
    requestedOptions: oro
      ? Array.from({ length: oro.length / 2 }, (_, k) => (oro[2 * k]! << 8) | oro[2 * k + 1]!)
      : [],
    elapsedTime: elapsed && (elapsed[0]! << 8) | elapsed[1]!,
    hasIa: options.some(([c]) => ia.includes(c)),
    dnsServers: dns
      ? Array.from({ length: dns.length / 16 }, (_, k) => dns.slice(16 * k, 16 * k + 16))
      : [],
  };
}

export function encodeDhcpv6(r: Dhcpv6Repr): Uint8Array {
  const size = r.options.reduce((n, [, v]) => n + 4 + v.length, HEADER);
  const out = new Uint8Array(size);
  out[0] = r.type;
  out[1] = (r.transactionId >>> 16) & 0xff;
  out[2] = (r.transactionId >>> 8) & 0xff;
  out[3] = r.transactionId & 0xff;
  let i = HEADER;
  for (const [code, value] of r.options) {
    if (value.length > 0xffff) throw new ParseError('dhcpv6.bad-option');
    out.set([code >>> 8, code & 0xff, value.length >>> 8, value.length & 0xff], i);
    out.set(value, i + 4);
    i += 4 + value.length;
  }
  return out;
}

/** A DUID-LL (type 3) for Ethernet (hardware type 1). */
export function duidLl(mac: Mac): Uint8Array {
  return Uint8Array.of(0, 3, 0, 1, ...mac.subarray(0, 6));
}

export interface Dhcpv6InfoServerConfig {
  serverDuid: Uint8Array;
  dns: readonly Ipv6[];
}

export type Dhcpv6ServerResult =
  { kind: 'reply'; message: Dhcpv6Repr; payload: Uint8Array } | { kind: 'none'; reason: string };

export class Dhcpv6InfoServer {
  constructor(private readonly config: Dhcpv6InfoServerConfig) {}

  /** Answers one client message (RFC 8415 16.12 and 18.3.6). */
  handle(m: Dhcpv6Message): Dhcpv6ServerResult {
    if (m.type !== Dhcpv6MessageType.InformationRequest) {
      const stateful: number[] = [1, 3, 4, 5, 6, 8, 9];
      const reason = stateful.includes(m.type) ? 'stateful-unsupported' : 'not-client-message';
      return { kind: 'none', reason: `dhcpv6.${reason}` };
    }
    if (m.serverId !== undefined && !equal(m.serverId, this.config.serverDuid)) {
      return { kind: 'none', reason: 'dhcpv6.other-server' };
    }
    if (m.hasIa) return { kind: 'none', reason: 'dhcpv6.ia-in-information-request' };
    const options: Dhcpv6OptionEntry[] = [[Dhcpv6Option.ServerId, this.config.serverDuid]];
    if (m.clientId !== undefined) options.push([Dhcpv6Option.ClientId, m.clientId]);
    if (this.config.dns.length > 0) {
      const dns = new Uint8Array(16 * this.config.dns.length);
      this.config.dns.forEach((a, k) => dns.set(a.subarray(0, 16), 16 * k));
      options.push([Dhcpv6Option.DnsServers, dns]);
    }
    const message = { type: Dhcpv6MessageType.Reply, transactionId: m.transactionId, options };
    return { kind: 'reply', message, payload: encodeDhcpv6(message) };
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
