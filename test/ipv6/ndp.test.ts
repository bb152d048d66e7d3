/**
 * The IPv6 router on a virtual clock, through the whole stack: unsolicited
 * and solicited router advertisements with the options SLAAC and RDNSS
 * need, neighbour advertisements for our addresses only, duplicate address
 * detection defended, echo answered for our addresses, fragments
 * reassembled on the way in and made on the way out, bad input counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { icmpv6Route } from '../../src/operators/icmpv6.js';
import { slirpStack } from '../../src/operators/stack.js';
import { ipv6ToString, macToString } from '../../src/protocols/address.js';
import { ETH_HEADER_LENGTH, ethDestination } from '../../src/protocols/ethernet.js';
import { writeIcmpv6 } from '../../src/protocols/icmpv6.js';
import { Ipv6Packet, Ipv6Reassembler, NextHeader, fragmentIpv6 } from '../../src/protocols/ipv6.js';
import {
  parseNeighborAdvertisement,
  parseRouterAdvertisement,
  solicitedNodeMulticast,
  writeNeighborSolicitation,
  writeRouterSolicitation,
} from '../../src/protocols/ndp.js';
import { pattern, rig } from '../operators/guest-frames.js';
import {
  ALL_NODES,
  ALL_ROUTERS,
  DNS6,
  DNS_MAC,
  GATEWAY6,
  GATEWAY_MAC,
  GUEST6,
  GUEST_LL,
  GUEST_MAC,
  ROUTER_LL,
  UNSPECIFIED,
  config6,
  echo6,
  frame6,
  icmp6,
  icmpFrame6,
  ip6,
} from './guest6.js';

const text = ipv6ToString;

function stack(config = config6()) {
  return rig<Buffer, Buffer>((ctx) => slirpStack(ctx), config);
}

function ra(frame: Buffer) {
  const { ip, icmp } = icmp6(frame);
  return { ip, ra: parseRouterAdvertisement(icmp, ip.hopLimit, ip.src) };
}

function rs(src = GUEST_LL, withMac = true): Buffer {
  return icmpFrame6(
    withMac ? 16 : 8,
    (buf, s, d) =>
      writeRouterSolicitation(buf, 0, { src: s, dst: d, ...(withMac && { sourceMac: GUEST_MAC }) }),
    { src, dst: ALL_ROUTERS, hopLimit: 255, dstMac: Uint8Array.of(0x33, 0x33, 0, 0, 0, 2) },
  );
}

function ns(target: Uint8Array, src = GUEST_LL, hopLimit = 255): Buffer {
  const dad = src.every((b) => b === 0);
  const dst = solicitedNodeMulticast(target);
  return icmpFrame6(
    dad ? 24 : 32,
    (buf, s, d) =>
      writeNeighborSolicitation(buf, 0, {
        src: s,
        dst: d,
        target,
        ...(!dad && { sourceMac: GUEST_MAC }),
      }),
    { src, dst, hopLimit },
  );
}

test('router advertisements at start: prefix for SLAAC, MTU, RDNSS, our MAC, from our link-local address', () => {
  const r = stack();
  r.advanceTo(0);
  assert.equal(r.out.length, 1);
  const frame = r.out[0]!;
  assert.equal(macToString(ethDestination(frame)), '33:33:00:00:00:01');
  const { ip, ra: adv } = ra(frame);
  assert.equal(text(ip.src), text(ROUTER_LL));
  assert.equal(text(ip.dst), 'ff02::1');
  assert.equal(ip.hopLimit, 255);
  assert.equal(adv.routerLifetimeSec, 1800);
  assert.equal(adv.managed, false);
  assert.equal(adv.other, true, 'O flag: stateless DHCPv6 has the DNS server too');
  assert.equal(adv.mtu, 1500);
  assert.equal(macToString(adv.sourceLinkLayer!), macToString(GATEWAY_MAC));
  assert.equal(adv.prefixes.length, 1);
  const p = adv.prefixes[0]!;
  assert.deepEqual([text(p.prefix), p.length, p.onLink, p.autonomous], ['fd00::', 64, true, true]);
  assert.ok(p.preferredLifetimeSec > 0 && p.validLifetimeSec >= p.preferredLifetimeSec);
  assert.deepEqual(adv.rdnss?.servers.map(text), ['fd00::3']);
  assert.ok(adv.rdnss!.lifetimeSec > 0);
});

test('three initial advertisements within 16 s, then one every 200 to 600 s', () => {
  const draws = [0, 0.999999, 0.5];
  const r = rig<Ipv6Packet, Buffer>(
    (ctx) => icmpv6Route(ctx, { ndp: { random: () => draws.shift() ?? 0.5 } }),
    config6(),
  );
  const times: number[] = [];
  for (let t = 0; t <= 2_000_000; t += 1_000) {
    const before = r.out.length;
    r.advanceTo(t);
    if (r.out.length > before) times.push(t);
  }
  assert.deepEqual(times.slice(0, 6), [0, 4_000, 12_000, 212_000, 812_000, 1_212_000]);
  assert.ok(r.out.every((f) => ra(f).ip.dst[0] === 0xff));
});

test('a router solicitation from the guest gets an advertisement sent to it', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  r.input.next(rs());
  assert.equal(r.out.length, 1);
  const { ip, ra: adv } = ra(r.out[0]!);
  assert.equal(text(ip.dst), text(GUEST_LL));
  assert.equal(macToString(ethDestination(r.out[0]!)), macToString(GUEST_MAC));
  assert.equal(text(adv.prefixes[0]!.prefix), 'fd00::');
  assert.equal(r.counter('ndp.ra.solicited'), 1);
});

test('solicitations from the unspecified address are answered on all-nodes, at most every 3 s', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  r.input.next(rs(UNSPECIFIED, false));
  r.input.next(rs(UNSPECIFIED, false));
  assert.equal(r.out.length, 0, 'the start-up advertisement was just now');
  r.advanceTo(2_999);
  assert.equal(r.out.length, 0);
  r.advanceTo(3_000);
  assert.equal(r.out.length, 1);
  assert.equal(text(ip6(r.out[0]!).dst), 'ff02::1');
  assert.equal(r.counter('ndp.rs.rate-limited'), 1);
});

test('--cidr6 and --mtu change what the advertisement says', () => {
  const r = stack(config6(9000, { ipv6: '2001:db8:7::/64' }));
  r.advanceTo(0);
  const { ra: adv } = ra(r.out[0]!);
  assert.equal(text(adv.prefixes[0]!.prefix), '2001:db8:7::');
  assert.equal(adv.mtu, 9000);
  assert.deepEqual(adv.rdnss?.servers.map(text), ['2001:db8:7::3']);
});

test('--disable-dns: no RDNSS, no O flag, and prefix::3 is nobody', () => {
  const r = stack(config6(1500, { disableDns: true }));
  r.advanceTo(0);
  const { ra: adv } = ra(r.out[0]!);
  assert.equal(adv.rdnss, undefined);
  assert.equal(adv.other, false);
  r.out.length = 0;
  r.input.next(ns(DNS6));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('ndp.ns.not-ours'), 1);
});

for (const [name, target, mac, router] of [
  ['gateway', GATEWAY6, GATEWAY_MAC, true],
  ['DNS address', DNS6, DNS_MAC, false],
  ['link-local address', ROUTER_LL, GATEWAY_MAC, true],
] as const) {
  test(`a neighbour solicitation for the ${name} gets a solicited advertisement`, () => {
    const r = stack();
    r.advanceTo(0);
    r.out.length = 0;
    r.input.next(ns(target));
    assert.equal(r.out.length, 1);
    const { ip, icmp } = icmp6(r.out[0]!);
    const na = parseNeighborAdvertisement(icmp, ip.hopLimit, ip.dst);
    assert.equal(text(ip.src), text(target));
    assert.equal(text(ip.dst), text(GUEST_LL));
    assert.equal(macToString(ethDestination(r.out[0]!)), macToString(GUEST_MAC));
    assert.equal(text(na.target), text(target));
    assert.equal(macToString(na.targetLinkLayer!), macToString(mac));
    assert.deepEqual([na.solicited, na.override, na.router], [true, true, router]);
  });
}

test('solicitations for other addresses go unanswered: nobody else is on the link', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  r.input.next(ns(GUEST6, UNSPECIFIED));
  r.input.next(ns(new Uint8Array([0xfd, ...new Array<number>(14).fill(0), 5])));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('ndp.ns.not-ours'), 2);
});

test('duplicate address detection for the gateway address is defended on all-nodes', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  r.input.next(ns(GATEWAY6, UNSPECIFIED));
  assert.equal(r.out.length, 1);
  const { ip, icmp } = icmp6(r.out[0]!);
  const na = parseNeighborAdvertisement(icmp, ip.hopLimit, ip.dst);
  assert.equal(text(ip.dst), 'ff02::1');
  assert.equal(na.solicited, false);
  assert.equal(r.counter('ndp.dad.defended'), 1);
});

test('malformed neighbour discovery is counted and dropped', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  r.input.next(ns(GATEWAY6, GUEST_LL, 64));
  const bad = ns(GATEWAY6);
  bad[bad.length - 1]! ^= 0xff;
  r.input.next(bad);
  r.input.next(Buffer.from(ns(GATEWAY6).subarray(0, ETH_HEADER_LENGTH + 30)));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('ndp.bad-hop-limit'), 1);
  assert.equal(r.counter('icmpv6.bad-checksum'), 1);
  assert.equal(r.counter('ipv6.truncated'), 1);
});

test('echo to our addresses is answered from the address asked; others are not ours to answer', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  const payload = Buffer.from('rxslirp ipv6 ping');
  r.input.next(echo6(payload, { dst: GATEWAY6, seq: 7 }));
  r.input.next(echo6(payload, { dst: DNS6, seq: 8 }));
  r.input.next(echo6(payload, { dst: ALL_NODES, src: GUEST_LL, seq: 9 }));
  r.input.next(
    echo6(payload, {
      dst: new Uint8Array([0x20, 1, 0xd, 0xb8, ...new Array<number>(11).fill(0), 1]),
    }),
  );
  assert.equal(r.out.length, 3);
  const replies = r.out.map((f) => icmp6(f));
  assert.deepEqual(
    replies.map(({ ip }) => text(ip.src)),
    ['fd00::2', 'fd00::3', text(ROUTER_LL)],
  );
  for (const [i, { ip, icmp }] of replies.entries()) {
    assert.equal(icmp.type, 129);
    assert.equal(icmp.identifier, 0x77);
    assert.equal(icmp.sequence, 7 + i);
    assert.deepEqual(Buffer.from(icmp.body), payload);
    assert.equal(text(ip.dst), i === 2 ? text(GUEST_LL) : text(GUEST6));
  }
  assert.equal(r.counter('icmpv6.echo.not-local'), 1);
});

test('a fragmented echo request is reassembled, and its large reply fragmented to the MTU', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  const payload = pattern(4000);
  const whole = echo6(payload, { dst: GATEWAY6 });
  const packet = Ipv6Packet.parse(whole, ETH_HEADER_LENGTH);
  const fragments = fragmentIpv6(packet, 1280, 0xabcd);
  assert.equal(fragments.length, 4);
  for (const f of fragments.reverse()) {
    const frame = Buffer.alloc(ETH_HEADER_LENGTH + f.length);
    whole.copy(frame, 0, 0, ETH_HEADER_LENGTH);
    frame.set(f, ETH_HEADER_LENGTH);
    r.input.next(frame);
  }
  assert.equal(r.counter('ipv6.fragment.reassembled'), 1);
  assert.ok(r.out.length >= 3, 'the reply went out in fragments');
  for (const f of r.out) assert.ok(f.length <= ETH_HEADER_LENGTH + 1500);
  const reassembler = new Ipv6Reassembler();
  let done: Uint8Array | undefined;
  for (const f of r.out) done = reassembler.add(ip6(f), 0).packet ?? done;
  assert.ok(done);
  const reply = icmp6(Buffer.concat([Buffer.alloc(ETH_HEADER_LENGTH), done]));
  assert.equal(reply.icmp.type, 129);
  assert.deepEqual(Buffer.from(reply.icmp.body), payload);
});

test('an incomplete fragmented datagram times out after 60 s, counted, and the guest told', () => {
  const r = stack();
  r.advanceTo(0);
  r.out.length = 0;
  const whole = echo6(pattern(3000), { dst: GATEWAY6 });
  const first = fragmentIpv6(Ipv6Packet.parse(whole, ETH_HEADER_LENGTH), 1280, 5)[0]!;
  r.input.next(Buffer.concat([whole.subarray(0, ETH_HEADER_LENGTH), first]));
  r.advanceTo(59_000);
  assert.equal(r.counter('ipv6.fragment.timeout'), 0);
  assert.ok(
    r.out.every((f) => ra(f).ra),
    'nothing but advertisements before the timeout',
  );
  r.advanceTo(61_000);
  assert.equal(r.counter('ipv6.fragment.timeout'), 1);
  const errors = r.out.map((f) => icmp6(f).icmp).filter((m) => m.type !== 134);
  assert.deepEqual(
    errors.map((m) => [m.type, m.code]),
    [[3, 1]],
    'one time exceeded, fragment reassembly',
  );
  assert.equal(r.counter('ipv6.fragment.time-exceeded-sent'), 1);
});

test('unknown upper protocols and multicast sources are counted', () => {
  const r = stack();
  r.advanceTo(0);
  r.input.next(frame6(NextHeader.NoNextHeader, new Uint8Array(0)));
  r.input.next(frame6(132, new Uint8Array(8)));
  r.input.next(echo6(Buffer.from('x'), { src: ALL_NODES }));
  assert.equal(r.counter('ipv6.unhandled-protocol'), 2);
  assert.equal(r.counter('ipv6.martian-source'), 1);
});

test('without -6 IPv6 frames are not handled at all', () => {
  const r = rig<Buffer, Buffer>((ctx) => slirpStack(ctx));
  r.advanceTo(20_000);
  r.input.next(echo6(Buffer.from('x')));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('ethernet.unhandled-type'), 1);
});

// Keep the writer import honest: a raw ICMPv6 message of an unhandled type.
test('an ICMPv6 type nobody handles is counted', () => {
  const r = stack();
  r.input.next(icmpFrame6(8, (b, s, d) => writeIcmpv6(b, 0, 200, 0, 0, new Uint8Array(0), s, d)));
  assert.equal(r.counter('icmpv6.unhandled-type'), 1);
});
