/**
 * UDP over IPv6 on a virtual clock with a fake host: stateless DHCPv6
 * answers INFORMATION-REQUEST with the DNS address, DNS on fd00::3 goes to
 * the forwarder and back from fd00::3, the NAT maps [fd00::2] to [::1] and
 * others as addressed, host errors come back as ICMPv6, flows expire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pipe } from 'rxjs';
import { ipv6Input } from '../../src/operators/ipv6.js';
import { udpRouteV6 } from '../../src/operators/udp6.js';
import { ipv6ToString, parseIpv6, type Ipv6 } from '../../src/protocols/address.js';
import { pseudoSumV6 } from '../../src/protocols/checksum.js';
import {
  Dhcpv6MessageType,
  Dhcpv6Option,
  encodeDhcpv6,
  parseDhcpv6,
} from '../../src/protocols/dhcpv6.js';
import {
  DnsHeader,
  DnsType,
  encodeDnsQuery,
  encodeDnsResponse,
  parseQuestion,
} from '../../src/protocols/dns.js';
import { Icmpv6Message } from '../../src/protocols/icmpv6.js';
import { NextHeader } from '../../src/protocols/ipv6.js';
import { UDP_HEADER, UdpDatagram, writeUdpV6 } from '../../src/protocols/udp.js';
import { fakeHost } from '../operators/fake-udp.js';
import { pattern, rig } from '../operators/guest-frames.js';
import { DNS6, GATEWAY6, GUEST6, GUEST_LL, ROUTER_LL, config6, frame6, ip6 } from './guest6.js';

const FAR = parseIpv6('2001:db8::53');

function udp6(payload: Uint8Array, dst: Ipv6, dstPort: number, src = GUEST6, srcPort = 40000) {
  const body = new Uint8Array(UDP_HEADER + payload.length);
  writeUdpV6(body, 0, src, dst, srcPort, dstPort, payload);
  return frame6(NextHeader.UDP, body, { src, dst });
}

function udpOf(frame: Buffer) {
  const ip = ip6(frame);
  assert.equal(ip.upperProtocol, NextHeader.UDP);
  const udp = UdpDatagram.parseV6(frame, ip.upperOffset, ip.upperLength, ip.src, ip.dst);
  return { ip, udp };
}

function setup(flags = {}, options: { upstream?: string } = {}) {
  const host = fakeHost();
  const r = rig<Buffer, Buffer>(
    (ctx) =>
      pipe(
        ipv6Input(ctx),
        udpRouteV6(ctx, {
          dns: { openSocket: host.open, upstream: options.upstream ?? '[2001:db8::35]:53' },
          nat: { openSocket: host.open, idleTimeoutMs: 60_000 },
        }),
      ),
    config6(1500, flags),
  );
  return { ...r, host };
}

function informationRequest(extra: [number, Uint8Array][] = []): Uint8Array {
  return encodeDhcpv6({
    type: Dhcpv6MessageType.InformationRequest,
    transactionId: 0xabcdef,
    options: [
      [Dhcpv6Option.ClientId, Uint8Array.of(0, 3, 0, 1, 2, 0, 0, 0, 0, 1)],
      [Dhcpv6Option.OptionRequest, Uint8Array.of(0, 23)],
      [Dhcpv6Option.ElapsedTime, Uint8Array.of(0, 0)],
      ...extra,
    ],
  });
}

test('DHCPv6: INFORMATION-REQUEST to ff02::1:2 gets a REPLY with fd00::3 from our link-local address', () => {
  const t = setup();
  t.input.next(udp6(informationRequest(), parseIpv6('ff02::1:2'), 547, GUEST_LL, 546));
  assert.equal(t.out.length, 1);
  const { ip, udp } = udpOf(t.out[0]!);
  assert.equal(ipv6ToString(ip.src), ipv6ToString(ROUTER_LL));
  assert.equal(ipv6ToString(ip.dst), ipv6ToString(GUEST_LL));
  assert.deepEqual([udp.srcPort, udp.dstPort], [547, 546]);
  const reply = parseDhcpv6(udp.payload);
  assert.equal(reply.type, Dhcpv6MessageType.Reply);
  assert.equal(reply.transactionId, 0xabcdef);
  assert.deepEqual(reply.dnsServers.map(ipv6ToString), ['fd00::3']);
  assert.deepEqual(Array.from(reply.clientId!), [0, 3, 0, 1, 2, 0, 0, 0, 0, 1]);
  assert.equal(t.counter('dhcpv6.replied'), 1);
});

test('DHCPv6: stateful requests go unanswered and are counted; so is garbage', () => {
  const t = setup();
  const solicit = encodeDhcpv6({ type: Dhcpv6MessageType.Solicit, transactionId: 1, options: [] });
  t.input.next(udp6(solicit, parseIpv6('ff02::1:2'), 547, GUEST_LL, 546));
  t.input.next(udp6(Uint8Array.of(11, 0, 0), parseIpv6('ff02::1:2'), 547, GUEST_LL, 546));
  assert.equal(t.out.length, 0);
  assert.equal(t.counter('dhcpv6.stateful-unsupported'), 1);
  assert.equal(t.counter('dhcpv6.truncated'), 1);
  assert.equal(t.host.sockets.length, 0, 'nothing reached the NAT');
});

test('DNS on fd00::3 goes to the upstream and the answer comes back from fd00::3', () => {
  const t = setup();
  t.input.next(udp6(encodeDnsQuery(0x1234, 'example.test', DnsType.AAAA), DNS6, 53));
  const upstream = t.host.sockets[0]!;
  assert.deepEqual(upstream.target, { address: '2001:db8::35', port: 53, family: 6 });
  const sent = upstream.sent[0]!;
  const question = parseQuestion(sent);
  upstream.reply(
    encodeDnsResponse({ id: DnsHeader.parse(sent).id, rd: true, question }, [
      { type: 'AAAA', address: parseIpv6('2001:db8::80'), ttl: 5 },
    ]),
  );
  assert.equal(t.out.length, 1);
  const { ip, udp } = udpOf(t.out[0]!);
  assert.equal(ipv6ToString(ip.src), 'fd00::3');
  assert.deepEqual([udp.srcPort, udp.dstPort], [53, 40000]);
  assert.equal(DnsHeader.parse(udp.payload).id, 0x1234);
});

test('the NAT: [fd00::2] is the host [::1], others as addressed, replies from where the guest wrote', () => {
  const t = setup();
  t.input.next(udp6(Buffer.from('ping'), GATEWAY6, 7));
  t.input.next(udp6(pattern(3000), FAR, 9999));
  assert.deepEqual(
    t.host.sockets.map((s) => s.target),
    [
      { address: '::1', port: 7, family: 6 },
      { address: '2001:db8::53', port: 9999, family: 6 },
    ],
  );
  t.host.sockets[0]!.reply(Buffer.from('pong'));
  const { ip, udp } = udpOf(t.out[0]!);
  assert.equal(ipv6ToString(ip.src), 'fd00::2');
  assert.deepEqual([udp.srcPort, udp.dstPort], [7, 40000]);
  assert.equal(Buffer.from(udp.payload).toString(), 'pong');
  assert.deepEqual(t.host.sockets[1]!.sent[0], pattern(3000));
});

test('port unreachable on the host comes back as ICMPv6 port unreachable quoting the datagram', () => {
  const t = setup();
  t.input.next(udp6(Buffer.from('x'), FAR, 9));
  t.host.sockets[0]!.fail('ECONNREFUSED');
  const ip = ip6(t.out[0]!);
  const icmp = Icmpv6Message.ofPacket(ip);
  assert.deepEqual([icmp.type, icmp.code], [1, 4]);
  assert.equal(ipv6ToString(ip.src), '2001:db8::53');
  assert.equal(icmp.body.length, 48, 'the IPv6 and UDP headers are quoted');
  assert.equal(ipv6ToString(icmp.body, 24), '2001:db8::53');
  assert.equal(Buffer.from(icmp.body).readUInt16BE(42), 9, 'the destination port');
});

test('--disable-host-loopback: fd00::2 is unreachable (no route); martians are dropped', () => {
  const t = setup({ disableHostLoopback: true });
  t.input.next(udp6(Buffer.from('x'), GATEWAY6, 7));
  t.input.next(udp6(Buffer.from('x'), parseIpv6('ff0e::1'), 7));
  t.input.next(udp6(Buffer.from('x'), parseIpv6('fd00::42'), 7));
  assert.equal(t.host.sockets.length, 0);
  assert.equal(t.out.length, 1);
  const icmp = Icmpv6Message.ofPacket(ip6(t.out[0]!));
  assert.deepEqual([icmp.type, icmp.code], [1, 0]);
  assert.equal(t.counter('udp6.nat.martian'), 2);
});

test('idle flows expire after 60 s; a zero or bad checksum is dropped and counted', () => {
  const t = setup();
  t.input.next(udp6(Buffer.from('x'), FAR, 9));
  t.advanceTo(59_000);
  assert.equal(t.host.sockets[0]!.closed, false);
  t.advanceTo(61_000);
  assert.equal(t.host.sockets[0]!.closed, true);
  assert.equal(t.counter('udp6.nat.flow-expired'), 1);

  const zero = udp6(Buffer.from('y'), FAR, 9);
  zero.writeUInt16BE(0, 14 + 40 + 6);
  t.input.next(zero);
  const bad = udp6(Buffer.from('y'), FAR, 9);
  bad[bad.length - 1]! ^= 1;
  t.input.next(bad);
  assert.equal(t.counter('udp.zero-checksum'), 1);
  assert.equal(t.counter('udp.bad-checksum'), 1);
  // Keep the pseudo-header import honest: the checksum we wrote was right.
  assert.ok(pseudoSumV6(GUEST6, FAR, 17, 9) > 0);
});
