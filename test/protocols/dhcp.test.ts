import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DhcpMessageType,
  DhcpOption,
  DhcpServer,
  encodeDhcp,
  parseDhcp,
  dhcpValue,
  type DhcpMessage,
  type DhcpOptionEntry,
  type DhcpServerConfig,
  type DhcpServerResult,
} from '../../src/protocols/dhcp.js';
import { ParseError } from '../../src/protocols/errors.js';
import { parseIpv4, ipv4ToString, macToString } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
function z(n: number): string {
  return '00'.repeat(n);
}

// Made offline with Python; tshark decodes them as shown in the comments.
// DISCOVER from 52:54:00:12:34:56, broadcast flag, client id 01:<mac>,
// host name "guest", parameter request list 1,3,6,15,26,28,51,58,59.
const DISCOVER = hex(
  '010106003903f326000080' +
    z(17) +
    '525400123456' +
    z(202) +
    '638253633501013d07015254001234560c05677565737437090103060f1a1c333a3bff' +
    z(29),
);
// OFFER of 10.0.2.15 from 10.0.2.2: lease 86400 s, mask /24, router
// 10.0.2.2, DNS 10.0.2.3, MTU 1500, client id echoed.
const OFFER = hex(
  '020106003903f32600008000000000000a00020f0000000000000000525400123456' +
    z(202) +
    '6382536335010236040a0002023304000151800104ffffff0003040a00020206040a0002031a0205dc3d0701525400123456ff00000000000000000000000000',
);
// REQUEST (SELECTING) of 10.0.2.15 with server id 10.0.2.2.
const REQUEST = hex(
  '010106003903f326000080' +
    z(17) +
    '525400123456' +
    z(202) +
    '638253633501033d070152540012345632040a00020f36040a0002020c05677565737437090103060f1a1c333a3bff' +
    z(17),
);
// ACK of 10.0.2.15, options as in the OFFER.
const ACK = hex(
  '020106003903f32600008000000000000a00020f0000000000000000525400123456' +
    z(202) +
    '6382536335010536040a0002023304000151800104ffffff0003040a00020206040a0002031a0205dc3d0701525400123456ff00000000000000000000000000',
);

const ip = parseIpv4;
const SERVER = ip('10.0.2.2');
const CONFIG: DhcpServerConfig = {
  serverIp: SERVER,
  network: ip('10.0.2.0'),
  netmask: ip('255.255.255.0'),
  gateway: SERVER,
  dns: [ip('10.0.2.3')],
  rangeBegin: ip('10.0.2.15'),
  rangeEnd: ip('10.0.2.30'),
  mtu: 1500,
};
const HOUR = 3_600_000;

test('parses a DISCOVER', () => {
  const m = parseDhcp(DISCOVER);
  assert.equal(m.op, 1);
  assert.equal(m.xid, 0x3903f326);
  assert.equal(m.broadcast, true);
  assert.equal(macToString(m.hardwareAddress), '52:54:00:12:34:56');
  assert.equal(m.messageType, DhcpMessageType.Discover);
  assert.deepEqual([...m.clientId!], [1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  assert.deepEqual([...m.parameterRequestList!], [1, 3, 6, 15, 26, 28, 51, 58, 59]);
  assert.equal(new TextDecoder().decode(m.optionMap.get(DhcpOption.HostName)), 'guest');
  assert.equal(m.requestedIp, undefined);
  assert.equal(m.serverId, undefined);
});

test('parses an OFFER and its typed options', () => {
  const m = parseDhcp(OFFER);
  assert.equal(ipv4ToString(m.yiaddr), '10.0.2.15');
  assert.equal(m.messageType, DhcpMessageType.Offer);
  assert.equal(m.serverId, SERVER);
  assert.equal(m.leaseTimeSec, 86400);
  assert.equal(m.subnetMask, ip('255.255.255.0'));
  assert.deepEqual(m.routers, [SERVER]);
  assert.deepEqual(m.dnsServers, [ip('10.0.2.3')]);
  assert.equal(m.interfaceMtu, 1500);
});

test('re-encodes all four fixtures byte for byte', () => {
  for (const fixture of [DISCOVER, OFFER, REQUEST, ACK]) {
    assert.deepEqual(encodeDhcp(parseDhcp(fixture)), fixture);
  }
});

test('DISCOVER -> OFFER -> REQUEST -> ACK, byte for byte, broadcast as asked', () => {
  const server = new DhcpServer(CONFIG);
  const offer = reply(server.handle(parseDhcp(DISCOVER), 0));
  assert.deepEqual(offer.payload, OFFER);
  assert.equal(offer.to.broadcast, true);
  assert.equal(offer.to.ip, 0xffffffff);
  assert.equal(offer.to.port, 68);
  assert.equal(macToString(offer.to.mac!), 'ff:ff:ff:ff:ff:ff');

  const ack = reply(server.handle(parseDhcp(REQUEST), 1000));
  assert.deepEqual(ack.payload, ACK);
  assert.equal(ack.to.broadcast, true);
  const [lease] = server.leases();
  assert.equal(lease!.state, 'bound');
  assert.equal(lease!.ip, ip('10.0.2.15'));
  assert.equal(lease!.expires, 1000 + 86_400_000);
});

// --- a scripted client -----------------------------------------------------

interface Client {
  mac: number;
  broadcast?: boolean;
  clientId?: Uint8Array;
}

function message(
  c: Client,
  type: number,
  extra: { requested?: string; server?: string; ciaddr?: string; giaddr?: string } = {},
): DhcpMessage {
  const chaddr = new Uint8Array(16);
  chaddr.set([0x02, 0, 0, 0, 0, c.mac]);
  const options: DhcpOptionEntry[] = [[DhcpOption.MessageType, dhcpValue.u8(type)]];
  if (extra.requested) options.push([DhcpOption.RequestedIp, dhcpValue.u32(ip(extra.requested))]);
  if (extra.server) options.push([DhcpOption.ServerId, dhcpValue.u32(ip(extra.server))]);
  if (c.clientId) options.push([DhcpOption.ClientId, c.clientId]);
  const bytes = encodeDhcp({
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x1000 + c.mac,
    secs: 0,
    flags: c.broadcast ? 0x8000 : 0,
    ciaddr: extra.ciaddr ? ip(extra.ciaddr) : 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: extra.giaddr ? ip(extra.giaddr) : 0,
    chaddr,
    sname: new Uint8Array(64),
    file: new Uint8Array(128),
    options,
  });
  return parseDhcp(bytes);
}

function reply(r: DhcpServerResult) {
  assert.equal(r.kind, 'reply', r.kind === 'none' ? r.reason : '');
  if (r.kind !== 'reply') throw new Error('unreachable');
  const parsed = parseDhcp(r.payload);
  return { ...r, parsed };
}

function none(r: DhcpServerResult): string {
  assert.equal(r.kind, 'none');
  return r.kind === 'none' ? r.reason : '';
}

/** Runs DISCOVER/REQUEST for `c`; returns the address acknowledged. */
function lease(server: DhcpServer, c: Client, now: number): string {
  const offer = reply(server.handle(message(c, DhcpMessageType.Discover), now));
  assert.equal(offer.parsed.messageType, DhcpMessageType.Offer);
  const offered = ipv4ToString(offer.parsed.yiaddr);
  const req = message(c, DhcpMessageType.Request, { requested: offered, server: '10.0.2.2' });
  const ack = reply(server.handle(req, now));
  assert.equal(ack.parsed.messageType, DhcpMessageType.Ack);
  assert.equal(ipv4ToString(ack.parsed.yiaddr), offered);
  return offered;
}

test('the first client gets range begin; each new client the next free address', () => {
  const server = new DhcpServer(CONFIG);
  assert.equal(lease(server, { mac: 1 }, 0), '10.0.2.15');
  assert.equal(lease(server, { mac: 2 }, 0), '10.0.2.16');
  assert.equal(lease(server, { mac: 3 }, 0), '10.0.2.17');
  assert.equal(lease(server, { mac: 2 }, 0), '10.0.2.16', 'the same MAC, the same address');
});

test('without the broadcast flag, OFFER and ACK are unicast to yiaddr and chaddr', () => {
  const server = new DhcpServer(CONFIG);
  const offer = reply(server.handle(message({ mac: 7 }, DhcpMessageType.Discover), 0));
  assert.equal(offer.to.broadcast, false);
  assert.equal(ipv4ToString(offer.to.ip), '10.0.2.15');
  assert.equal(macToString(offer.to.mac!), '02:00:00:00:00:07');
  assert.equal(offer.to.port, 68);
  assert.equal(offer.parsed.flags, 0);
});

test('through a relay agent, replies go to giaddr on port 67', () => {
  const server = new DhcpServer(CONFIG);
  const m = message({ mac: 7 }, DhcpMessageType.Discover, { giaddr: '10.0.2.1' });
  const offer = reply(server.handle(m, 0));
  assert.deepEqual(
    [ipv4ToString(offer.to.ip), offer.to.port, offer.to.mac],
    ['10.0.2.1', 67, undefined],
  );
  assert.equal(offer.parsed.giaddr, ip('10.0.2.1'));
});

test('RELEASE, then the same client is leased the same address again', () => {
  const server = new DhcpServer(CONFIG);
  const c = { mac: 9 };
  assert.equal(lease(server, c, 0), '10.0.2.15');
  assert.equal(lease(server, { mac: 10 }, 0), '10.0.2.16');
  const rel = message(c, DhcpMessageType.Release, { ciaddr: '10.0.2.15', server: '10.0.2.2' });
  assert.equal(none(server.handle(rel, HOUR)), 'dhcp.released');
  assert.equal(server.leases().find((l) => l.ip === ip('10.0.2.15'))!.state, 'released');
  assert.equal(lease(server, { mac: 11 }, HOUR), '10.0.2.17', 'a newcomer does not take it');
  assert.equal(lease(server, c, 2 * HOUR), '10.0.2.15');
});

test('a RELEASE that does not match the binding is ignored', () => {
  const server = new DhcpServer(CONFIG);
  lease(server, { mac: 1 }, 0);
  const wrongAddr = message({ mac: 1 }, DhcpMessageType.Release, {
    ciaddr: '10.0.2.16',
    server: '10.0.2.2',
  });
  assert.equal(none(server.handle(wrongAddr, 1)), 'dhcp.bad-release');
  const stranger = message({ mac: 2 }, DhcpMessageType.Release, {
    ciaddr: '10.0.2.15',
    server: '10.0.2.2',
  });
  assert.equal(none(server.handle(stranger, 1)), 'dhcp.bad-release');
  assert.equal(server.leases()[0]!.state, 'bound');
});

test('NAK: outside the range, outside the subnet, or leased to another MAC', () => {
  const server = new DhcpServer(CONFIG);
  lease(server, { mac: 1 }, 0);
  const cases: Array<[string, string]> = [
    ['10.0.2.100', 'outside the pool'],
    ['192.168.1.20', 'not on this network'],
    ['10.0.2.15', 'leased to another client'],
  ];
  for (const [requested, why] of cases) {
    const m = message({ mac: 2 }, DhcpMessageType.Request, { requested, server: '10.0.2.2' });
    const nak = reply(server.handle(m, 1));
    assert.equal(nak.parsed.messageType, DhcpMessageType.Nak);
    assert.equal(nak.parsed.yiaddr, 0);
    assert.equal(nak.parsed.serverId, SERVER);
    assert.equal(nak.parsed.leaseTimeSec, undefined);
    assert.match(new TextDecoder().decode(nak.parsed.optionMap.get(DhcpOption.Message)), /./);
    assert.ok(new TextDecoder().decode(nak.parsed.optionMap.get(56)).includes(why));
    assert.equal(nak.to.broadcast, true, 'a NAK is always broadcast without a relay');
  }
});

test('a REQUEST naming another server gets no reply and withdraws our offer', () => {
  const server = new DhcpServer(CONFIG);
  const c = { mac: 4 };
  reply(server.handle(message(c, DhcpMessageType.Discover), 0));
  const m = message(c, DhcpMessageType.Request, { requested: '10.0.2.15', server: '10.0.2.9' });
  assert.equal(none(server.handle(m, 10)), 'dhcp.other-server');
  assert.equal(server.leases()[0]!.expires, 10);
});

test('INIT-REBOOT: a known client is ACKed; a free address is granted to a stranger', () => {
  const server = new DhcpServer(CONFIG);
  lease(server, { mac: 1 }, 0);
  const again = message({ mac: 1 }, DhcpMessageType.Request, { requested: '10.0.2.15' });
  assert.equal(reply(server.handle(again, HOUR)).parsed.messageType, DhcpMessageType.Ack);
  const stranger = message({ mac: 5 }, DhcpMessageType.Request, { requested: '10.0.2.20' });
  const ack = reply(server.handle(stranger, HOUR));
  assert.equal(ipv4ToString(ack.parsed.yiaddr), '10.0.2.20');
  const taken = message({ mac: 6 }, DhcpMessageType.Request, { requested: '10.0.2.20' });
  assert.equal(reply(server.handle(taken, HOUR)).parsed.messageType, DhcpMessageType.Nak);
});

test('RENEWING: the ACK is unicast to ciaddr and extends the lease', () => {
  const server = new DhcpServer(CONFIG);
  lease(server, { mac: 1 }, 0);
  const renew = message({ mac: 1 }, DhcpMessageType.Request, { ciaddr: '10.0.2.15' });
  const ack = reply(server.handle(renew, 12 * HOUR));
  assert.equal(ack.parsed.messageType, DhcpMessageType.Ack);
  assert.equal(ack.parsed.ciaddr, ip('10.0.2.15'));
  assert.deepEqual([ipv4ToString(ack.to.ip), ack.to.broadcast], ['10.0.2.15', false]);
  assert.equal(server.leases()[0]!.expires, 36 * HOUR);
  const empty = message({ mac: 1 }, DhcpMessageType.Request);
  assert.equal(none(server.handle(empty, 12 * HOUR)), 'dhcp.bad-request');
});

test('INFORM gets an ACK with configuration but no lease', () => {
  const server = new DhcpServer(CONFIG);
  const m = message({ mac: 3 }, DhcpMessageType.Inform, { ciaddr: '10.0.2.100' });
  const ack = reply(server.handle(m, 0));
  assert.equal(ack.parsed.messageType, DhcpMessageType.Ack);
  assert.equal(ack.parsed.yiaddr, 0);
  assert.equal(ack.parsed.ciaddr, ip('10.0.2.100'));
  assert.equal(ack.parsed.leaseTimeSec, undefined);
  assert.deepEqual(ack.parsed.dnsServers, [ip('10.0.2.3')]);
  assert.deepEqual([ipv4ToString(ack.to.ip), ack.to.port], ['10.0.2.100', 68]);
  assert.deepEqual(server.leases(), []);
});

test('pool exhaustion: no offer, until a lease expires and is reclaimed', () => {
  const small = { ...CONFIG, rangeBegin: ip('10.0.2.15'), rangeEnd: ip('10.0.2.17') };
  const server = new DhcpServer({ ...small, leaseTimeSec: 3600 });
  assert.equal(lease(server, { mac: 1 }, 0), '10.0.2.15');
  assert.equal(lease(server, { mac: 2 }, 10), '10.0.2.16');
  assert.equal(lease(server, { mac: 3 }, 20), '10.0.2.17');
  const late = message({ mac: 4 }, DhcpMessageType.Discover);
  assert.equal(none(server.handle(late, 30)), 'dhcp.pool-exhausted');
  assert.equal(none(server.handle(late, HOUR - 1)), 'dhcp.pool-exhausted');
  assert.equal(lease(server, { mac: 4 }, HOUR), '10.0.2.15', 'the oldest lapsed lease');
  assert.equal(lease(server, { mac: 1 }, HOUR + 15), '10.0.2.16', 'the former holder moves');
});

test('an offer not taken up frees its address after the hold time', () => {
  const small = { ...CONFIG, rangeBegin: ip('10.0.2.15'), rangeEnd: ip('10.0.2.15') };
  const server = new DhcpServer({ ...small, offerHoldMs: 5000 });
  reply(server.handle(message({ mac: 1 }, DhcpMessageType.Discover), 0));
  const other = message({ mac: 2 }, DhcpMessageType.Discover);
  assert.equal(none(server.handle(other, 4999)), 'dhcp.pool-exhausted');
  assert.equal(ipv4ToString(reply(server.handle(other, 5000)).parsed.yiaddr), '10.0.2.15');
});

test('a DISCOVER may ask for an address, granted when never bound', () => {
  const server = new DhcpServer(CONFIG);
  const m = message({ mac: 1 }, DhcpMessageType.Discover, { requested: '10.0.2.25' });
  assert.equal(ipv4ToString(reply(server.handle(m, 0)).parsed.yiaddr), '10.0.2.25');
  const outside = message({ mac: 2 }, DhcpMessageType.Discover, { requested: '10.0.2.99' });
  assert.equal(ipv4ToString(reply(server.handle(outside, 0)).parsed.yiaddr), '10.0.2.15');
});

test('DECLINE keeps the address out of the pool for a while', () => {
  const server = new DhcpServer({ ...CONFIG, declineHoldMs: 60_000 });
  const c = { mac: 1 };
  assert.equal(lease(server, c, 0), '10.0.2.15');
  const dec = message(c, DhcpMessageType.Decline, { requested: '10.0.2.15', server: '10.0.2.2' });
  assert.equal(none(server.handle(dec, 100)), 'dhcp.declined');
  assert.equal(lease(server, c, 200), '10.0.2.16');
  assert.equal(lease(server, { mac: 2 }, 300), '10.0.2.17');
  const grab = message({ mac: 3 }, DhcpMessageType.Request, { requested: '10.0.2.15' });
  assert.equal(reply(server.handle(grab, 400)).parsed.messageType, DhcpMessageType.Nak);
  assert.equal(lease(server, { mac: 3 }, 60_100), '10.0.2.15');
  const bogus = message(c, DhcpMessageType.Decline, { requested: '10.0.2.20', server: '10.0.2.2' });
  assert.equal(none(server.handle(bogus, 60_200)), 'dhcp.bad-decline');
});

test('leases are keyed by client identifier when one is sent', () => {
  const server = new DhcpServer(CONFIG);
  const a = { mac: 1, clientId: Uint8Array.of(0, 0xaa, 0xbb) };
  const b = { mac: 1, clientId: Uint8Array.of(0, 0xcc, 0xdd) };
  assert.equal(lease(server, a, 0), '10.0.2.15');
  assert.equal(lease(server, b, 0), '10.0.2.16');
  assert.equal(lease(server, { mac: 1 }, 0), '10.0.2.17');
  assert.equal(lease(server, a, 0), '10.0.2.15');
});

test('messages a server must not answer are ignored with a reason', () => {
  const server = new DhcpServer(CONFIG);
  assert.equal(none(server.handle(parseDhcp(OFFER), 0)), 'dhcp.not-request');
  const bootp = parseDhcp(encodeDhcp({ ...parseDhcp(DISCOVER), options: [] }));
  assert.equal(none(server.handle(bootp, 0)), 'dhcp.not-dhcp');
  const nak = message({ mac: 1 }, DhcpMessageType.Nak);
  assert.equal(none(server.handle(nak, 0)), 'dhcp.unexpected-type');
});

test('a configuration whose range is not inside its network is refused', () => {
  assert.throws(() => new DhcpServer({ ...CONFIG, rangeEnd: ip('10.0.3.5') }), RangeError);
  assert.throws(() => new DhcpServer({ ...CONFIG, rangeBegin: ip('10.0.2.31') }), RangeError);
});

test('every truncation and each malformed part is a typed parse error', () => {
  for (let n = 0; n < 240; n++) {
    assert.throws(() => parseDhcp(DISCOVER.subarray(0, n)), { code: 'dhcp.truncated' });
  }
  const cut = DISCOVER.subarray(0, 250);
  assert.throws(() => parseDhcp(cut), { code: 'dhcp.bad-option' });
  const mutate = (at: number, value: number) => {
    const b = Uint8Array.from(DISCOVER);
    b[at] = value;
    return b;
  };
  assert.throws(() => parseDhcp(mutate(0, 3)), { code: 'dhcp.bad-op' });
  assert.throws(() => parseDhcp(mutate(2, 17)), { code: 'dhcp.bad-hlen' });
  assert.throws(() => parseDhcp(mutate(236, 0)), { code: 'dhcp.bad-cookie' });
  // The message type option two bytes long; a client identifier one byte long.
  assert.throws(() => parseDhcp(mutate(241, 2)), { code: 'dhcp.bad-option' });
  assert.throws(() => parseDhcp(mutate(244, 1)), ParseError);
  assert.throws(() => parseDhcp(DISCOVER.subarray(0, 241)), { code: 'dhcp.bad-option' });
});

test('options: repeated codes are concatenated, long values split, overload followed', () => {
  const base = parseDhcp(DISCOVER);
  const long = Uint8Array.from({ length: 600 }, (_, i) => i & 0xff);
  const bytes = encodeDhcp({
    ...base,
    options: [
      [DhcpOption.DnsServers, long.subarray(0, 8)],
      [200, long],
    ],
  });
  assert.equal(bytes.length, 240 + 10 + 606 + 1);
  const m = parseDhcp(bytes);
  assert.deepEqual(m.optionMap.get(200), long);
  assert.equal(m.options.filter(([c]) => c === 200).length, 3);

  const overloaded = Uint8Array.from(DISCOVER);
  overloaded.set([DhcpOption.Overload, 1, 1, 0xff], 240 + 3 + 9 + 7 + 11);
  overloaded.set([DhcpOption.Router, 4, 10, 0, 2, 2, 0xff], 108);
  assert.deepEqual(parseDhcp(overloaded).routers, [SERVER]);
  overloaded[240 + 3 + 9 + 7 + 11 + 2] = 4;
  assert.throws(() => parseDhcp(overloaded), { code: 'dhcp.bad-option' });
});
