/**
 * DHCPv4 (RFC 2131, options RFC 2132): the message codec and the pure lease
 * server that hands the guest its address.
 *
 * Interface:
 * - `parseDhcp(buf, offset, length)` returns a `DhcpMessage` record: the
 *   BOOTP fixed part, the options in order (pad dropped, repeated codes
 *   concatenated per RFC 3396, option overload of `file`/`sname` followed),
 *   and the typed options the server uses, validated once so that reading
 *   them cannot fail. ParseError codes: `dhcp.truncated`, `dhcp.bad-op`,
 *   `dhcp.bad-hlen`, `dhcp.bad-cookie`, `dhcp.bad-option`.
 * - `encodeDhcp(repr)` / `writeDhcp(buf, offset, repr)` /
 *   `dhcpEncodedLength(repr)` write the fixed part, the cookie, the options
 *   in the order given, End, and zero padding to the 300-byte BOOTP minimum.
 * - `new DhcpServer(config)` and `server.handle(message, now)` answer one
 *   client message: `{ kind: 'reply', message, payload, to }` (the reply, its
 *   encoded bytes, and where RFC 2131 4.1 says it goes) or `{ kind: 'none',
 *   reason }` with a stable reason code for counters. `now` is in ms.
 *
 * Theory of operation of the server. Leases are keyed by the client
 * identifier option when present, else by hardware type and address. A
 * client keeps its binding after it releases or lets it expire, so it gets
 * the same address back; a new client takes the lowest address of the
 * range never bound, or failing that, reclaims the binding that expired
 * longest ago (so the first client gets range begin, network+15 in
 * slirp4netns terms). An OFFER reserves its address for `offerHoldMs`;
 * REQUEST turns it into a lease of `leaseTimeSec`. A declined address is
 * not offered again for `declineHoldMs`. Memory stays bounded: at most one
 * binding per address of the range.
 *
 * REQUEST, by the client state RFC 2131 4.3.2 describes:
 * - SELECTING (server identifier present): ours and the address offered or
 *   free -> ACK; another server's -> no reply (the client chose it, our
 *   offer is withdrawn: `dhcp.other-server`), as the RFC says, rather than
 *   a NAK; an address outside the range or bound to another client -> NAK.
 * - INIT-REBOOT (requested address, no server identifier) and RENEWING /
 *   REBINDING (ciaddr only): an address outside our subnet or range, or
 *   bound to another client -> NAK; otherwise ACK. Deliberate deviation:
 *   for a client we have no record of, RFC 2131 says to stay silent; we are
 *   the only, authoritative server of a private link, so we grant a free
 *   address in range, which lets a guest keep its address across a
 *   restart of the stack.
 * DECLINE, RELEASE -> no reply; INFORM -> ACK without lease or yiaddr.
 * Replies carry message type, server identifier, lease time (OFFER, ACK),
 * subnet mask, router, DNS servers, interface MTU when configured, and echo
 * the client identifier (RFC 6842). Not done: relay agent options (RFC
 * 3046), static reservations, host name / domain options, BOOTP clients
 * without a message type (ignored as `dhcp.not-dhcp`), and persisting
 * leases across instances.
 */
import { readIpv4, writeIpv4, BROADCAST_MAC, type Ipv4, type Mac } from './address.js';
import { ParseError, need } from './errors.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

const OP = 0;
const HTYPE = 1;
const HLEN = 2;
const HOPS = 3;
const XID = 4;
const SECS = 8;
const FLAGS = 10;
const CIADDR = 12;
const YIADDR = 16;
const SIADDR = 20;
const GIADDR = 24;
const CHADDR = 28;
const SNAME = 44;
const FILE = 108;
const COOKIE = 236;
const OPTIONS = 240;
const MAGIC_COOKIE = 0x63825363;
const BOOTP_MIN_LENGTH = 300;
const FLAG_BROADCAST = 0x8000;

export const BootpOp = { Request: 1, Reply: 2 } as const;

export const DhcpMessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

export const DhcpOption = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServers: 6,
  HostName: 12,
  InterfaceMtu: 26,
  RequestedIp: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParameterRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  ClientId: 61,
  End: 255,
} as const;

/** One option as it goes on the wire: code and value (without the length byte). */
export type DhcpOptionEntry = readonly [code: number, value: Uint8Array];

/** What an encoder needs; `parseDhcp` returns a superset. */
export interface DhcpRepr {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: Ipv4;
  yiaddr: Ipv4;
  siaddr: Ipv4;
  giaddr: Ipv4;
  /** 16 bytes; the hardware address is the first `hlen`. */
  chaddr: Uint8Array;
  /** 64 bytes, zero-terminated server host name. */
  sname: Uint8Array;
  /** 128 bytes, zero-terminated boot file name. */
  file: Uint8Array;
  options: readonly DhcpOptionEntry[];
}

/** A parsed message, with the options the server reads already typed. */
export interface DhcpMessage extends DhcpRepr {
  /** The BROADCAST flag (RFC 2131 figure 2). */
  broadcast: boolean;
  /** The client hardware address: chaddr's first hlen bytes. */
  hardwareAddress: Uint8Array;
  /** Undefined for plain BOOTP. */
  messageType: number | undefined;
  requestedIp: Ipv4 | undefined;
  serverId: Ipv4 | undefined;
  parameterRequestList: Uint8Array | undefined;
  clientId: Uint8Array | undefined;
  leaseTimeSec: number | undefined;
  subnetMask: Ipv4 | undefined;
  routers: Ipv4[];
  dnsServers: Ipv4[];
  interfaceMtu: number | undefined;
  /** All options by code (concatenated when repeated). */
  optionMap: ReadonlyMap<number, Uint8Array>;
}

/** Parses a DHCP message (a UDP payload). */
export function parseDhcp(buf: Uint8Array, offset = 0, length = buf.length - offset): DhcpMessage {
  if (length < OPTIONS) throw new ParseError('dhcp.truncated');
  need(buf, offset, length, 'dhcp.truncated');
  const at = (i: number) => buf[offset + i]!;
  const u16 = (i: number) => (at(i) << 8) | at(i + 1);
  const op = at(OP);
  if (op !== BootpOp.Request && op !== BootpOp.Reply) throw new ParseError('dhcp.bad-op');
  const hlen = at(HLEN);
  if (hlen > 16) throw new ParseError('dhcp.bad-hlen');
  if (readIpv4(buf, offset + COOKIE) !== MAGIC_COOKIE) throw new ParseError('dhcp.bad-cookie');

  const options = readOptions(buf, offset + OPTIONS, offset + length);
  const overload = options.find(([code]) => code === DhcpOption.Overload)?.[1];
  if (overload !== undefined) {
    if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) bad('overload');
    if (overload[0]! & 1) options.push(...readOptions(buf, offset + FILE, offset + FILE + 128));
    if (overload[0]! & 2) options.push(...readOptions(buf, offset + SNAME, offset + SNAME + 64));
  }
  const optionMap = concatenate(options);
  const chaddr = buf.slice(offset + CHADDR, offset + CHADDR + 16);
  const flags = u16(FLAGS);
  return {
    op,
    htype: at(HTYPE),
    hlen,
    hops: at(HOPS),
    xid: readIpv4(buf, offset + XID),
    secs: u16(SECS),
    flags,
    ciaddr: readIpv4(buf, offset + CIADDR),
    yiaddr: readIpv4(buf, offset + YIADDR),
    siaddr: readIpv4(buf, offset + SIADDR),
    giaddr: readIpv4(buf, offset + GIADDR),
    chaddr,
    sname: buf.slice(offset + SNAME, offset + SNAME + 64),
    file: buf.slice(offset + FILE, offset + FILE + 128),
    options,
    broadcast: (flags & FLAG_BROADCAST) !== 0,
    hardwareAddress: chaddr.subarray(0, hlen),
    ...typedOptions(optionMap),
    optionMap,
  };
}

function bad(what: string): never {
  throw new ParseError('dhcp.bad-option', `dhcp.bad-option: ${what}`);
}

/** Reads the TLVs of buf[from, to) up to End (or the end of the bytes). */
function readOptions(buf: Uint8Array, from: number, to: number): DhcpOptionEntry[] {
  const out: DhcpOptionEntry[] = [];
  for (let i = from; i < to;) {
    const code = buf[i]!;
    if (code === DhcpOption.End) break;
    if (code === DhcpOption.Pad) {
      i += 1;
      continue;
    }
    if (i + 2 > to) bad(`option ${code} has no length`);
    const len = buf[i + 1]!;
    if (i + 2 + len > to) bad(`option ${code} runs past the end`);
    out.push([code, buf.slice(i + 2, i + 2 + len)]);
    i += 2 + len;
  }
  return out;
}

function concatenate(options: readonly DhcpOptionEntry[]): Map<number, Uint8Array> {
  const map = new Map<number, Uint8Array>();
  for (const [code, value] of options) {
    const prev = map.get(code);
    if (prev === undefined) {
      map.set(code, value);
      continue;
    }
    const joined = new Uint8Array(prev.length + value.length);
    joined.set(prev);
    joined.set(value, prev.length);
    map.set(code, joined);
  }
  return map;
}

function typedOptions(map: ReadonlyMap<number, Uint8Array>) {
  const exact = (code: number, len: number): Uint8Array | undefined => {
    const v = map.get(code);
    if (v !== undefined && v.length !== len) bad(`option ${code} length ${v.length}`);
    return v;
  };
  const address = (code: number) => {
    const v = exact(code, 4);
    return v === undefined ? undefined : readIpv4(v, 0);
  };
  const addresses = (code: number): Ipv4[] => {
    const v = map.get(code);
    if (v === undefined) return [];
    if (v.length === 0 || v.length % 4 !== 0) bad(`option ${code} length ${v.length}`);
    return Array.from({ length: v.length / 4 }, (_, i) => readIpv4(v, i * 4));
  };
  const type = exact(DhcpOption.MessageType, 1);
  const lease = exact(DhcpOption.LeaseTime, 4);
  const mtu = exact(DhcpOption.InterfaceMtu, 2);
  const clientId = map.get(DhcpOption.ClientId);
  if (clientId !== undefined && clientId.length < 2) bad('client identifier shorter than 2');
  return {
    messageType: type?.[0],
    requestedIp: address(DhcpOption.RequestedIp),
    serverId: address(DhcpOption.ServerId),
    parameterRequestList: map.get(DhcpOption.ParameterRequestList),
    clientId,
    leaseTimeSec: lease === undefined ? undefined : readIpv4(lease, 0),
    subnetMask: address(DhcpOption.SubnetMask),
    routers: addresses(DhcpOption.Router),
    dnsServers: addresses(DhcpOption.DnsServers),
    interfaceMtu: mtu === undefined ? undefined : (mtu[0]! << 8) | mtu[1]!,
  };
}

/** The bytes `writeDhcp` writes for `r`. */
export function dhcpEncodedLength(r: DhcpRepr): number {
  let n = OPTIONS + 1;
  for (const [, value] of r.options)
    n += 2 * Math.ceil(Math.max(value.length, 1) / 255) + value.length;
  return Math.max(n, BOOTP_MIN_LENGTH);
}

/**
 * Writes `r` at buf[offset]; returns the offset past it. An option value
 * longer than 255 bytes is split into several options (RFC 3396).
 */
export function writeDhcp(buf: Uint8Array, offset: number, r: DhcpRepr): number {
  const end = offset + dhcpEncodedLength(r);
  need(buf, offset, end - offset, 'dhcp.buffer');
  buf.fill(0, offset, end);
  buf[offset + OP] = r.op;
  buf[offset + HTYPE] = r.htype;
  buf[offset + HLEN] = r.hlen;
  buf[offset + HOPS] = r.hops;
  writeIpv4(buf, offset + XID, r.xid);
  writeU16(buf, offset + SECS, r.secs);
  writeU16(buf, offset + FLAGS, r.flags);
  writeIpv4(buf, offset + CIADDR, r.ciaddr);
  writeIpv4(buf, offset + YIADDR, r.yiaddr);
  writeIpv4(buf, offset + SIADDR, r.siaddr);
  writeIpv4(buf, offset + GIADDR, r.giaddr);
  buf.set(r.chaddr.subarray(0, 16), offset + CHADDR);
  buf.set(r.sname.subarray(0, 64), offset + SNAME);
  buf.set(r.file.subarray(0, 128), offset + FILE);
  writeIpv4(buf, offset + COOKIE, MAGIC_COOKIE);
  let i = offset + OPTIONS;
  for (const [code, value] of r.options) {
    let from = 0;
    do {
      const chunk = value.subarray(from, from + 255);
      buf[i] = code;
      buf[i + 1] = chunk.length;
      buf.set(chunk, i + 2);
      i += 2 + chunk.length;
      from += 255;
    } while (from < value.length);
  }
  buf[i] = DhcpOption.End;
  return end;
}

export function encodeDhcp(r: DhcpRepr): Uint8Array {
  const out = new Uint8Array(dhcpEncodedLength(r));
  writeDhcp(out, 0, r);
  return out;
}

function writeU16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}

/** Option values from numbers. */
export const dhcpValue = {
  u8: (v: number): Uint8Array => Uint8Array.of(v),
  u16: (v: number): Uint8Array => Uint8Array.of(v >>> 8, v & 0xff),
  u32: (v: number): Uint8Array => {
    const out = new Uint8Array(4);
    writeIpv4(out, 0, v >>> 0);
    return out;
  },
  addresses: (list: readonly Ipv4[]): Uint8Array => {
    const out = new Uint8Array(list.length * 4);
    list.forEach((a, i) => writeIpv4(out, i * 4, a));
    return out;
  },
};

// ---------------------------------------------------------------------------
// The server

export interface DhcpServerConfig {
  /** The server identifier and the replies' source (slirp4netns: the gateway). */
  serverIp: Ipv4;
  network: Ipv4;
  netmask: Ipv4;
  /** The router option. */
  gateway: Ipv4;
  /** DNS servers option; none sent when empty. */
  dns: readonly Ipv4[];
  rangeBegin: Ipv4;
  rangeEnd: Ipv4;
  /** Lease length (default 86400 s). */
  leaseTimeSec?: number;
  /** The interface MTU option (26), when set. */
  mtu?: number;
  /** How long an offer reserves its address (default 60 s). */
  offerHoldMs?: number;
  /** How long a declined address is kept out of the pool (default 10 min). */
  declineHoldMs?: number;
}

/** Where a reply goes (RFC 2131 4.1). */
export interface DhcpDestination {
  /** IPv4 destination; 0xffffffff when broadcast. */
  ip: Ipv4;
  /** UDP destination port: 68 to a client, 67 to a relay agent. */
  port: number;
  /**
   * Ethernet destination: the broadcast MAC, the client's hardware address
   * (it may not answer ARP yet), or undefined for a relay agent, to be
   * resolved by ARP as usual.
   */
  mac: Mac | undefined;
  broadcast: boolean;
}

export type DhcpServerResult =
  | { kind: 'reply'; message: DhcpRepr; payload: Uint8Array; to: DhcpDestination }
  | { kind: 'none'; reason: string };

export interface DhcpLease {
  ip: Ipv4;
  /** Hardware address of the client that holds it. */
  mac: Uint8Array;
  clientId: Uint8Array | undefined;
  state: 'offered' | 'bound' | 'released';
  /** When it lapses, in the caller's ms. */
  expires: number;
}

interface Binding extends DhcpLease {
  key: string;
}

export class DhcpServer {
  private readonly config: Required<DhcpServerConfig>;
  private readonly byKey = new Map<string, Binding>();
  private readonly byIp = new Map<Ipv4, Binding>();
  private readonly declined = new Map<Ipv4, number>();

  constructor(config: DhcpServerConfig) {
    this.config = {
      leaseTimeSec: 86_400,
      mtu: 0,
      offerHoldMs: 60_000,
      declineHoldMs: 600_000,
      ...config,
    };
    const c = this.config;
    if (c.rangeBegin > c.rangeEnd || !this.inSubnet(c.rangeBegin) || !this.inSubnet(c.rangeEnd)) {
      throw new RangeError('DHCP range must lie in the network, begin <= end');
    }
  }

  /** The bindings held, active or not (for the API and for tests). */
  leases(): DhcpLease[] {
    return [...this.byIp.values()].map(({ key: _key, ...lease }) => ({ ...lease }));
  }

  /** Answers one message from a client. */
  handle(m: DhcpMessage, now: number): DhcpServerResult {
    if (m.op !== BootpOp.Request) return none('dhcp.not-request');
    switch (m.messageType) {
      case undefined:
        return none('dhcp.not-dhcp');
      case DhcpMessageType.Discover:
        return this.discover(m, now);
      case DhcpMessageType.Request:
        return this.request(m, now);
      case DhcpMessageType.Decline:
        return this.decline(m, now);
      case DhcpMessageType.Release:
        return this.release(m, now);
      case DhcpMessageType.Inform:
        return this.reply(m, DhcpMessageType.Ack, 0, false);
      default:
        return none('dhcp.unexpected-type');
    }
  }

  private discover(m: DhcpMessage, now: number): DhcpServerResult {
    const key = clientKey(m);
    const ip = this.allocate(key, m.requestedIp, now);
    if (ip === undefined) return none('dhcp.pool-exhausted');
    const b = this.bind(key, m, ip);
    if (!(b.state === 'bound' && b.expires > now)) {
      b.state = 'offered';
      b.expires = now + this.config.offerHoldMs;
    }
    return this.reply(m, DhcpMessageType.Offer, ip, true);
  }

  private request(m: DhcpMessage, now: number): DhcpServerResult {
    const key = clientKey(m);
    if (m.serverId !== undefined && m.serverId !== this.config.serverIp) {
      const b = this.byKey.get(key);
      if (b !== undefined && b.state === 'offered') b.expires = now;
      return none('dhcp.other-server');
    }
    const ip = m.requestedIp ?? m.ciaddr;
    if (ip === 0) return none('dhcp.bad-request');
    const why = this.refusal(key, ip, now);
    if (why !== undefined) return this.nak(m, why);
    const b = this.bind(key, m, ip);
    b.state = 'bound';
    b.expires = now + this.config.leaseTimeSec * 1000;
    return this.reply(m, DhcpMessageType.Ack, ip, true);
  }

  /** Why `key` may not have `ip`, if it may not. */
  private refusal(key: string, ip: Ipv4, now: number): string | undefined {
    if (!this.inSubnet(ip)) return 'requested address is not on this network';
    if (ip < this.config.rangeBegin || ip > this.config.rangeEnd) {
      return 'requested address is outside the pool';
    }
    const holder = this.byIp.get(ip);
    if (holder !== undefined && holder.key !== key && isActive(holder, now)) {
      return 'requested address is leased to another client';
    }
    if ((this.declined.get(ip) ?? -Infinity) > now) return 'requested address was declined';
    return undefined;
  }

  private decline(m: DhcpMessage, now: number): DhcpServerResult {
    if (m.serverId !== this.config.serverIp || m.requestedIp === undefined) {
      return none('dhcp.bad-decline');
    }
    const b = this.byKey.get(clientKey(m));
    if (b === undefined || b.ip !== m.requestedIp) return none('dhcp.bad-decline');
    this.unbind(b);
    this.declined.set(b.ip, now + this.config.declineHoldMs);
    return none('dhcp.declined');
  }

  private release(m: DhcpMessage, now: number): DhcpServerResult {
    const b = this.byKey.get(clientKey(m));
    if (b === undefined || b.ip !== m.ciaddr || m.serverId !== this.config.serverIp) {
      return none('dhcp.bad-release');
    }
    b.state = 'released';
    b.expires = now;
    return none('dhcp.released');
  }

  /**
   * The address for `key`: its own binding's, else `wanted` if free, else
   * the lowest never-bound address, else the binding lapsed longest ago.
   */
  private allocate(key: string, wanted: Ipv4 | undefined, now: number): Ipv4 | undefined {
    const own = this.byKey.get(key);
    if (own !== undefined && !this.isDeclined(own.ip, now)) return own.ip;
    const free = (ip: Ipv4) => !this.byIp.has(ip) && !this.isDeclined(ip, now);
    const c = this.config;
    if (wanted !== undefined && wanted >= c.rangeBegin && wanted <= c.rangeEnd && free(wanted)) {
      return wanted;
    }
    for (let ip = c.rangeBegin; ip <= c.rangeEnd; ip++) if (free(ip)) return ip;
    let oldest: Binding | undefined;
    for (const b of this.byIp.values()) {
      if (isActive(b, now) || this.isDeclined(b.ip, now)) continue;
      if (oldest === undefined || b.expires < oldest.expires) oldest = b;
    }
    return oldest?.ip;
  }

  private isDeclined(ip: Ipv4, now: number): boolean {
    const until = this.declined.get(ip);
    if (until === undefined) return false;
    if (until > now) return true;
    this.declined.delete(ip);
    return false;
  }

  /** Gives `ip` to `key`, taking it from whoever had it and freeing key's old one. */
  private bind(key: string, m: DhcpMessage, ip: Ipv4): Binding {
    const own = this.byKey.get(key);
    if (own !== undefined && own.ip === ip) return own;
    if (own !== undefined) this.unbind(own);
    const previous = this.byIp.get(ip);
    if (previous !== undefined) this.unbind(previous);
    const b: Binding = {
      key,
      ip,
      mac: Uint8Array.from(m.hardwareAddress),
      clientId: m.clientId && Uint8Array.from(m.clientId),
      state: 'offered',
      expires: 0,
    };
    this.byKey.set(key, b);
    this.byIp.set(ip, b);
    return b;
  }

  private unbind(b: Binding): void {
    this.byKey.delete(b.key);
    this.byIp.delete(b.ip);
  }

  private inSubnet(ip: Ipv4): boolean {
    return (ip & this.config.netmask) >>> 0 === this.config.network;
  }

  private nak(m: DhcpMessage, text: string): DhcpServerResult {
    const options: DhcpOptionEntry[] = [
      [DhcpOption.MessageType, dhcpValue.u8(DhcpMessageType.Nak)],
      [DhcpOption.ServerId, dhcpValue.u32(this.config.serverIp)],
      [DhcpOption.Message, new TextEncoder().encode(text)],
    ];
    if (m.clientId !== undefined) options.push([DhcpOption.ClientId, m.clientId]);
    const message = replyRepr(m, 0, 0, options);
    const to: DhcpDestination =
      m.giaddr !== 0
        ? { ip: m.giaddr, port: DHCP_SERVER_PORT, mac: undefined, broadcast: false }
        : { ip: 0xffffffff, port: DHCP_CLIENT_PORT, mac: BROADCAST_MAC, broadcast: true };
    return { kind: 'reply', message, payload: encodeDhcp(message), to };
  }

  private reply(m: DhcpMessage, type: number, yiaddr: Ipv4, lease: boolean): DhcpServerResult {
    const c = this.config;
    const options: DhcpOptionEntry[] = [
      [DhcpOption.MessageType, dhcpValue.u8(type)],
      [DhcpOption.ServerId, dhcpValue.u32(c.serverIp)],
    ];
    if (lease) options.push([DhcpOption.LeaseTime, dhcpValue.u32(c.leaseTimeSec)]);
    options.push([DhcpOption.SubnetMask, dhcpValue.u32(c.netmask)]);
    options.push([DhcpOption.Router, dhcpValue.addresses([c.gateway])]);
    if (c.dns.length > 0) options.push([DhcpOption.DnsServers, dhcpValue.addresses(c.dns)]);
    if (c.mtu > 0) options.push([DhcpOption.InterfaceMtu, dhcpValue.u16(c.mtu)]);
    if (m.clientId !== undefined) options.push([DhcpOption.ClientId, m.clientId]);
    const inform = m.messageType === DhcpMessageType.Inform;
    const ciaddr = type === DhcpMessageType.Ack ? m.ciaddr : 0;
    const message = replyRepr(m, ciaddr, inform ? 0 : yiaddr, options);
    return { kind: 'reply', message, payload: encodeDhcp(message), to: destination(m, yiaddr) };
  }
}

function none(reason: string): DhcpServerResult {
  return { kind: 'none', reason };
}

function isActive(b: Binding, now: number): boolean {
  return b.state !== 'released' && b.expires > now;
}

function clientKey(m: DhcpMessage): string {
  if (m.clientId !== undefined) return `id:${hex(m.clientId)}`;
  return `hw:${m.htype}:${hex(m.hardwareAddress)}`;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function replyRepr(
  m: DhcpMessage,
  ciaddr: Ipv4,
  yiaddr: Ipv4,
  options: DhcpOptionEntry[],
): DhcpRepr {
  return {
    op: BootpOp.Reply,
    htype: m.htype,
    hlen: m.hlen,
    hops: 0,
    xid: m.xid,
    secs: 0,
    flags: m.flags & FLAG_BROADCAST,
    ciaddr,
    yiaddr,
    siaddr: 0,
    giaddr: m.giaddr,
    chaddr: m.chaddr,
    sname: new Uint8Array(64),
    file: new Uint8Array(128),
    options,
  };
}

/** RFC 2131 4.1, for OFFER and ACK. */
function destination(m: DhcpMessage, yiaddr: Ipv4): DhcpDestination {
  if (m.giaddr !== 0) {
    return { ip: m.giaddr, port: DHCP_SERVER_PORT, mac: undefined, broadcast: false };
  }
  const mac = m.htype === 1 && m.hlen === 6 ? Uint8Array.from(m.hardwareAddress) : undefined;
  if (m.ciaddr !== 0) return { ip: m.ciaddr, port: DHCP_CLIENT_PORT, mac, broadcast: false };
  if (m.broadcast || mac === undefined || yiaddr === 0) {
    return { ip: 0xffffffff, port: DHCP_CLIENT_PORT, mac: BROADCAST_MAC, broadcast: true };
  }
  return { ip: yiaddr, port: DHCP_CLIENT_PORT, mac, broadcast: false };
}
