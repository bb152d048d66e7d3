import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PREFIX,
  multicastMac,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterAdvertisement,
  parseRouterSolicitation,
  routerAdvertisementLength,
  solicitedNodeMulticast,
  writeNeighborAdvertisement,
  writeNeighborSolicitation,
  writeRouterAdvertisement,
  writeRouterSolicitation,
} from '../../src/protocols/ndp.js';
import { Icmpv6Message } from '../../src/protocols/icmpv6.js';
import { Ipv6Packet } from '../../src/protocols/ipv6.js';
import { ParseError } from '../../src/protocols/errors.js';
import { ipv6ToString, macToString, parseIpv6, parseMac } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

// Made offline with Python; tshark decodes each as in the comments, every
// checksum correct. Guest MAC 02:00:00:00:00:01, link-local
// fe80::ff:fe00:1; gateway MAC 52:55:0a:00:02:02, link-local fe80::2.
// Neighbour solicitation for fd00::2, with the guest's link-layer address.
const NS = hex(
  '6000000000203afffe80000000000000000000fffe000001ff0200000000000000000001ff00000287007d1700000000fd0000000000000000000000000000020101020000000001',
);
// The answer: router, solicited, override; target link-layer address.
const NA = hex(
  '6000000000203afffe800000000000000000000000000002fe80000000000000000000fffe00000188003e44e0000000fd000000000000000000000000000002020152550a000202',
);
// Duplicate address detection for fd00::ff:fe00:1, from ::.
const DAD = hex(
  '6000000000183aff' +
    '00'.repeat(16) +
    'ff0200000000000000000001ff00000187007ea500000000fd00000000000000000000fffe000001',
);
// Router solicitation to ff02::2 with the guest's link-layer address.
const RS = hex(
  '6000000000103afffe80000000000000000000fffe000001ff02000000000000000000000000000285007b2c000000000101020000000001',
);
// Router advertisement to ff02::1: hop limit 64, O flag, lifetime 1800 s;
// source link-layer, MTU 1500, prefix fd00::/64 L+A (86400 s / 14400 s),
// RDNSS fd00::3 (1800 s).
const RA = hex(
  '6000000000583afffe800000000000000000000000000002ff0200000000000000000000000000018600e2d2404007080000000000000000010152550a00020205010000000005dc030440c0000151800000384000000000fd0000000000000000000000000000001903000000000708fd000000000000000000000000000003',
);
const GUEST_MAC = parseMac('02:00:00:00:00:01');
const GATEWAY_MAC = parseMac('52:55:0a:00:02:02');
const GUEST_LL = parseIpv6('fe80::ff:fe00:1');
const ROUTER_LL = parseIpv6('fe80::2');

function icmp(frame: Uint8Array) {
  const p = Ipv6Packet.parse(frame);
  return { p, m: Icmpv6Message.ofPacket(p) };
}

test('parses a neighbour solicitation', () => {
  const { p, m } = icmp(NS);
  const ns = parseNeighborSolicitation(m, p.hopLimit, p.src, p.dst);
  assert.equal(ipv6ToString(ns.target), 'fd00::2');
  assert.equal(macToString(ns.sourceLinkLayer!), '02:00:00:00:00:01');
  assert.equal(ns.isDad, false);
  assert.deepEqual(solicitedNodeMulticast(ns.target), p.dst);
  assert.equal(macToString(multicastMac(p.dst)), '33:33:ff:00:00:02');
});

test('answers it with a neighbour advertisement byte for byte', () => {
  const { p, m } = icmp(NS);
  const ns = parseNeighborSolicitation(m, p.hopLimit, p.src, p.dst);
  const out = new Uint8Array(32);
  const end = writeNeighborAdvertisement(out, 0, {
    src: ROUTER_LL,
    dst: p.src,
    target: ns.target,
    router: true,
    solicited: true,
    override: true,
    targetMac: GATEWAY_MAC,
  });
  assert.equal(end, 32);
  assert.deepEqual(out, NA.subarray(40));
  const na = icmp(NA);
  assert.deepEqual(parseNeighborAdvertisement(na.m, 255, na.p.dst), {
    router: true,
    solicited: true,
    override: true,
    target: ns.target,
    targetLinkLayer: GATEWAY_MAC,
  });
});

test('re-encodes the solicitations byte for byte', () => {
  const ns = new Uint8Array(32);
  const target = parseIpv6('fd00::2');
  const nsDst = solicitedNodeMulticast(target);
  writeNeighborSolicitation(ns, 0, { src: GUEST_LL, dst: nsDst, target, sourceMac: GUEST_MAC });
  assert.deepEqual(ns, NS.subarray(40));
  const dad = new Uint8Array(24);
  const tentative = parseIpv6('fd00::ff:fe00:1');
  const unspecified = new Uint8Array(16);
  writeNeighborSolicitation(dad, 0, {
    src: unspecified,
    dst: solicitedNodeMulticast(tentative),
    target: tentative,
  });
  assert.deepEqual(dad, DAD.subarray(40));
  const rs = new Uint8Array(16);
  writeRouterSolicitation(rs, 0, {
    src: GUEST_LL,
    dst: parseIpv6('ff02::2'),
    sourceMac: GUEST_MAC,
  });
  assert.deepEqual(rs, RS.subarray(40));
});

test('recognises duplicate address detection', () => {
  const { p, m } = icmp(DAD);
  const ns = parseNeighborSolicitation(m, p.hopLimit, p.src, p.dst);
  assert.equal(ns.isDad, true);
  assert.equal(ns.sourceLinkLayer, undefined);
  assert.throws(() => parseNeighborSolicitation(m, 255, p.src, parseIpv6('fd00::2')), {
    code: 'ndp.bad-destination',
  });
});

test('parses a router solicitation and answers with the advertisement byte for byte', () => {
  const { p, m } = icmp(RS);
  assert.equal(
    macToString(parseRouterSolicitation(m, p.hopLimit, p.src).sourceLinkLayer!),
    '02:00:00:00:00:01',
  );
  const repr = {
    src: ROUTER_LL,
    dst: parseIpv6('ff02::1'),
    other: true,
    sourceMac: GATEWAY_MAC,
    mtu: 1500,
    prefix: { prefix: DEFAULT_PREFIX },
    rdnss: { servers: [parseIpv6('fd00::3')] },
  };
  assert.equal(routerAdvertisementLength(repr), 88);
  const out = new Uint8Array(88);
  assert.equal(writeRouterAdvertisement(out, 0, repr), 88);
  assert.deepEqual(out, RA.subarray(40));
});

test('parses the router advertisement', () => {
  const { p, m } = icmp(RA);
  const ra = parseRouterAdvertisement(m, p.hopLimit, p.src);
  assert.deepEqual(
    [
      ra.curHopLimit,
      ra.managed,
      ra.other,
      ra.routerLifetimeSec,
      ra.reachableTimeMs,
      ra.retransTimerMs,
    ],
    [64, false, true, 1800, 0, 0],
  );
  assert.equal(ra.mtu, 1500);
  assert.deepEqual(ra.sourceLinkLayer, GATEWAY_MAC);
  assert.equal(ra.prefixes.length, 1);
  const pi = ra.prefixes[0]!;
  assert.deepEqual(
    [
      ipv6ToString(pi.prefix),
      pi.length,
      pi.onLink,
      pi.autonomous,
      pi.validLifetimeSec,
      pi.preferredLifetimeSec,
    ],
    ['fd00::', 64, true, true, 86400, 14400],
  );
  assert.deepEqual(
    ra.rdnss!.servers.map((s) => ipv6ToString(s)),
    ['fd00::3'],
  );
  assert.equal(ra.rdnss!.lifetimeSec, 1800);
  assert.throws(() => parseRouterAdvertisement(m, 255, parseIpv6('fd00::2')), {
    code: 'ndp.bad-source',
  });
});

test('a configurable prefix is masked to its length; options are optional', () => {
  const repr = {
    src: ROUTER_LL,
    dst: parseIpv6('ff02::1'),
    prefix: { prefix: parseIpv6('2001:db8:1:2:3:4:5:6'), length: 48, autonomous: false },
    routerLifetimeSec: 0,
  };
  const out = new Uint8Array(routerAdvertisementLength(repr));
  writeRouterAdvertisement(out, 0, repr);
  const ra = parseRouterAdvertisement(
    Icmpv6Message.parse(out, 0, out.length, repr.src, repr.dst),
    255,
    repr.src,
  );
  assert.equal(ipv6ToString(ra.prefixes[0]!.prefix), '2001:db8:1::');
  assert.deepEqual(
    [ra.prefixes[0]!.length, ra.prefixes[0]!.onLink, ra.prefixes[0]!.autonomous],
    [48, true, false],
  );
  assert.deepEqual(
    [ra.routerLifetimeSec, ra.mtu, ra.rdnss, ra.sourceLinkLayer],
    [0, undefined, undefined, undefined],
  );
});

test('RFC 4861 validity checks, each with its code', () => {
  const { p, m } = icmp(NS);
  assert.throws(() => parseNeighborSolicitation(m, 64, p.src, p.dst), {
    code: 'ndp.bad-hop-limit',
  });
  assert.throws(() => parseRouterSolicitation(m, 255, p.src), { code: 'ndp.bad-type' });
  const resign = (frame: Uint8Array, at: number, value: number) => {
    const b = Uint8Array.from(frame);
    b[at] = value;
    b[42] = b[43] = 0;
    let s = 0;
    const pseudo = [
      ...b.subarray(8, 40),
      0,
      0,
      (b.length - 40) >> 8,
      (b.length - 40) & 0xff,
      0,
      0,
      0,
      58,
    ];
    const words = [...pseudo, ...b.subarray(40)];
    for (let i = 0; i < words.length; i += 2) s += (words[i]! << 8) | (words[i + 1] ?? 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    b[42] = (~s >> 8) & 0xff;
    b[43] = ~s & 0xff;
    return icmp(b);
  };
  const code1 = resign(NS, 41, 1);
  assert.throws(() => parseNeighborSolicitation(code1.m, 255, code1.p.src, code1.p.dst), {
    code: 'ndp.bad-code',
  });
  const zeroOption = resign(NS, 65, 0);
  assert.throws(
    () => parseNeighborSolicitation(zeroOption.m, 255, zeroOption.p.src, zeroOption.p.dst),
    {
      code: 'ndp.bad-option-length',
    },
  );
  const longOption = resign(NS, 65, 2);
  assert.throws(
    () => parseNeighborSolicitation(longOption.m, 255, longOption.p.src, longOption.p.dst),
    {
      code: 'ndp.truncated',
    },
  );
  const multicastTarget = resign(NS, 48, 0xff);
  assert.throws(
    () =>
      parseNeighborSolicitation(
        multicastTarget.m,
        255,
        multicastTarget.p.src,
        multicastTarget.p.dst,
      ),
    { code: 'ndp.bad-target' },
  );
  const na = icmp(NA);
  assert.throws(() => parseNeighborAdvertisement(na.m, 255, parseIpv6('ff02::1')), {
    code: 'ndp.bad-destination',
  });
  const rs = icmp(RS);
  assert.throws(() => parseRouterSolicitation(rs.m, 255, new Uint8Array(16)), {
    code: 'ndp.bad-source',
  });
  const badMtu = resign(RA, 73, 2);
  assert.throws(() => parseRouterAdvertisement(badMtu.m, 255, badMtu.p.src), ParseError);
});

test('every truncation of the ICMPv6 part is a typed parse error', () => {
  for (const frame of [NS, NA, RS, RA, DAD]) {
    const p = Ipv6Packet.parse(frame);
    for (let n = 0; n < p.upperLength; n++) {
      assert.throws(() => {
        const m = Icmpv6Message.parse(frame, 40, n, p.src, p.dst);
        parseNeighborSolicitation(m, 255, p.src, p.dst);
      }, ParseError);
    }
  }
});
