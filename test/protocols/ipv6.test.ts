import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Ipv6Packet,
  Ipv6Reassembler,
  NextHeader,
  fragmentIpv6,
  writeIpv6Header,
} from '../../src/protocols/ipv6.js';
import { ParseError } from '../../src/protocols/errors.js';
import { ipv6ToString, parseIpv6 } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

// Made offline with Python; tshark finds every checksum correct and
// reassembles the fragments ("Reassembled IPv6 length: 108").
// An ICMPv6 echo request fd00::100 -> fd00::2.
const ECHO_REQUEST = hex(
  '6000000000183a40fd000000000000000000000000000100fd0000000000000000000000000000028000393312340001202122232425262728292a2b2c2d2e2f',
);
// UDP behind hop-by-hop (router alert, PadN) and destination options (PadN).
const EXT = hex(
  '60000000001c0040fd000000000000000000000000000100fd0000000000000000000000000000023c0005020000010011000104000000009c401e61000c856a61626364',
);
// A UDP datagram fd00::2 -> fd00::100 with 100 bytes of data ...
const WHOLE = hex(
  '60000000006c1140fd000000000000000000000000000002fd0000000000000000000000000001009c419c40006ca77201060b10151a1f24292e33383d42474c51565b60656a6f74797e83888d92979ca1a6abb0b5babfc4c9ced3d8dde2e7ecf1f6fb00050a0f14191e23282d32373c41464b50555a5f64696e73787d82878c91969ba0a5aaafb4b9bec3c8cdd2d7dce1e6ebf0',
);
// ... and its fragments at MTU 96, identification 0xdeadbeef.
const FRAGS = [
  '6000000000382c40fd000000000000000000000000000002fd00000000000000000000000000010011000001deadbeef9c419c40006ca77201060b10151a1f24292e33383d42474c51565b60656a6f74797e83888d92979ca1a6abb0b5babfc4',
  '6000000000382c40fd000000000000000000000000000002fd00000000000000000000000000010011000031deadbeefc9ced3d8dde2e7ecf1f6fb00050a0f14191e23282d32373c41464b50555a5f64696e73787d82878c91969ba0a5aaafb4',
  '6000000000142c40fd000000000000000000000000000002fd00000000000000000000000000010011000060deadbeefb9bec3c8cdd2d7dce1e6ebf0',
].map(hex);

test('IPv6 text: parse and RFC 5952 format', () => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::', 'fd00::'],
    ['FD00:0:0:0:0:0:0:2', 'fd00::2'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fe80::ff:fe00:1', 'fe80::ff:fe00:1'],
    ['::ffff:10.0.2.2', '::ffff:10.0.2.2'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ];
  for (const [text, canonical] of cases) assert.equal(ipv6ToString(parseIpv6(text)), canonical);
  for (const bad of [
    '',
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7:8::',
    '::1.2.3',
    '1.2.3.4::',
    'fe80::1%eth0',
    '[::1]',
  ]) {
    assert.throws(() => parseIpv6(bad), { code: 'ipv6.text' }, bad);
  }
});

test('parses a header and finds ICMPv6 right after it', () => {
  const p = Ipv6Packet.parse(ECHO_REQUEST);
  assert.equal(ipv6ToString(p.src), 'fd00::100');
  assert.equal(ipv6ToString(p.dst), 'fd00::2');
  assert.deepEqual(
    [p.payloadLength, p.nextHeader, p.hopLimit, p.trafficClass, p.flowLabel],
    [24, 58, 64, 0, 0],
  );
  assert.deepEqual([p.upperProtocol, p.upperOffset, p.upperLength], [NextHeader.ICMPv6, 40, 24]);
  assert.equal(p.fragment, undefined);
});

test('re-encodes the fixed header byte for byte', () => {
  const p = Ipv6Packet.parse(ECHO_REQUEST);
  const out = new Uint8Array(40);
  const r = { src: p.src, dst: p.dst, nextHeader: 58, payloadLength: 24, hopLimit: 64 };
  assert.equal(writeIpv6Header(out, 0, r), 40);
  assert.deepEqual(out, ECHO_REQUEST.subarray(0, 40));
  writeIpv6Header(out, 0, { ...r, trafficClass: 0xb8, flowLabel: 0xabcde });
  const q = Ipv6Packet.parse(new Uint8Array([...out, ...ECHO_REQUEST.subarray(40)]));
  assert.deepEqual([q.trafficClass, q.flowLabel], [0xb8, 0xabcde]);
});

test('walks hop-by-hop and destination options to the upper layer', () => {
  const p = Ipv6Packet.parse(EXT);
  assert.equal(p.nextHeader, NextHeader.HopByHop);
  assert.deepEqual([p.upperProtocol, p.upperOffset, p.upperLength], [NextHeader.UDP, 56, 12]);
});

/** EXT with bytes at `at` replaced. */
function ext(at: number, ...bytes: number[]): Uint8Array {
  const b = Uint8Array.from(EXT);
  b.set(bytes, at);
  return b;
}

test('extension headers: refusals each with their code', () => {
  // Hop-by-hop after destination options.
  assert.throws(() => Ipv6Packet.parse(ext(48, 0)), { code: 'ipv6.misplaced-hop-by-hop' });
  // An unknown option whose action bits say discard (01) / send ICMP (10).
  assert.throws(() => Ipv6Packet.parse(ext(50, 0x41)), { code: 'ipv6.unknown-option' });
  assert.throws(() => Ipv6Packet.parse(ext(50, 0x81)), { code: 'ipv6.unknown-option' });
  // An unknown option with action 00 is skipped.
  assert.equal(Ipv6Packet.parse(ext(50, 0x1e)).upperProtocol, NextHeader.UDP);
  // An option running past its header.
  assert.throws(() => Ipv6Packet.parse(ext(51, 5)), { code: 'ipv6.bad-option' });
  // ESP and AH are not processed.
  assert.throws(() => Ipv6Packet.parse(ext(48, 50)), { code: 'ipv6.unsupported-extension' });
  assert.throws(() => Ipv6Packet.parse(ext(40, 51)), { code: 'ipv6.unsupported-extension' });
  // A header longer than the payload.
  assert.throws(() => Ipv6Packet.parse(ext(49, 9)), { code: 'ipv6.truncated' });
});

test('a routing header passes only with no segments left', () => {
  const routing = (left: number) => {
    const b = new Uint8Array(40 + 8 + 8);
    writeIpv6Header(b, 0, {
      src: parseIpv6('fd00::1'),
      dst: parseIpv6('fd00::2'),
      nextHeader: 43,
      payloadLength: 16,
    });
    b.set([59, 0, 4, left], 40);
    return b;
  };
  const p = Ipv6Packet.parse(routing(0));
  assert.deepEqual([p.upperProtocol, p.upperOffset], [NextHeader.NoNextHeader, 48]);
  assert.throws(() => Ipv6Packet.parse(routing(1)), { code: 'ipv6.routing-header' });
});

test('reports a fragment and stops the walk at it; an atomic fragment is walked through', () => {
  const p = Ipv6Packet.parse(FRAGS[1]!);
  assert.deepEqual(p.fragment, {
    offset: 48,
    more: true,
    identification: 0xdeadbeef,
    nextHeader: 17,
    headerOffset: 40,
    nextHeaderField: 6,
  });
  assert.deepEqual([p.upperProtocol, p.upperOffset, p.upperLength], [17, 48, 48]);
  const atomic = Uint8Array.from(FRAGS[2]!);
  atomic[43] = 0;
  atomic.set([0x9c, 0x41, 0x9c, 0x40, 0, 12], 48);
  const a = Ipv6Packet.parse(atomic);
  assert.equal(a.fragment, undefined);
  assert.deepEqual([a.upperProtocol, a.upperOffset], [17, 48]);
});

test('every truncation is a typed parse error; so are version and jumbograms', () => {
  for (const packet of [ECHO_REQUEST, EXT, FRAGS[0]!]) {
    for (let n = 0; n < packet.length; n++) {
      assert.throws(() => Ipv6Packet.parse(packet.subarray(0, n)), ParseError);
    }
  }
  assert.throws(() => Ipv6Packet.parse(ext(0, 0x40)), { code: 'ipv6.bad-version' });
  assert.throws(() => Ipv6Packet.parse(ext(4, 0, 0)), { code: 'ipv6.jumbogram' });
  const padded = new Uint8Array([...ECHO_REQUEST, 0, 0, 0]);
  assert.equal(Ipv6Packet.parse(padded).upperLength, 24);
});

test('fragments byte for byte, and reassembles in any order byte for byte', () => {
  assert.deepEqual(fragmentIpv6(Ipv6Packet.parse(WHOLE), 96, 0xdeadbeef), FRAGS);
  for (const order of [
    [0, 1, 2],
    [2, 0, 1],
    [1, 2, 0],
  ]) {
    const r = new Ipv6Reassembler();
    const out = order.map((i) => r.add(Ipv6Packet.parse(FRAGS[i]!), 0));
    assert.deepEqual(
      out.map((x) => x.packet !== undefined),
      [false, false, true],
    );
    assert.deepEqual(out[2]!.packet, WHOLE);
    assert.equal(out[2]!.fragments, 3);
    assert.deepEqual(
      out.flatMap((x) => x.drops),
      [],
    );
  }
});

test('IPv6 overlap discards the datagram; fragments keep their hop-by-hop header', () => {
  const r = new Ipv6Reassembler();
  const overlapping = fragmentIpv6(Ipv6Packet.parse(WHOLE), 104, 0xdeadbeef);
  r.add(Ipv6Packet.parse(FRAGS[1]!), 0);
  const res = r.add(Ipv6Packet.parse(overlapping[0]!), 0);
  assert.deepEqual(
    res.drops.map((d) => d.code),
    ['ipv6.fragment.overlap'],
  );

  const withHbh = new Uint8Array(WHOLE.length + 8);
  withHbh.set(WHOLE.subarray(0, 40));
  withHbh.set([17, 0, 1, 4, 0, 0, 0, 0], 40);
  withHbh.set(WHOLE.subarray(40), 48);
  withHbh[6] = 0;
  withHbh[5] += 8;
  const frags = fragmentIpv6(Ipv6Packet.parse(withHbh), 100, 7);
  assert.ok(frags.every((f) => f.length <= 100 && f[6] === 0 && f[40] === 44));
  const r2 = new Ipv6Reassembler();
  const done = [...frags].reverse().map((f) => r2.add(Ipv6Packet.parse(f), 5).packet);
  assert.deepEqual(done.at(-1), withHbh);
});

test('the fragmenter refuses what it cannot do, and passes what fits', () => {
  const whole = Ipv6Packet.parse(WHOLE);
  assert.deepEqual(fragmentIpv6(whole, 1280, 1), [WHOLE]);
  assert.throws(() => fragmentIpv6(whole, 55, 1), { code: 'ipv6.fragment.mtu-too-small' });
  assert.throws(() => fragmentIpv6(Ipv6Packet.parse(FRAGS[0]!), 60, 1), {
    code: 'ipv6.fragment.already-fragmented',
  });
});

test('a timed-out first fragment comes back as it arrived, fragment header and all', () => {
  const frame = new Uint8Array(14 + FRAGS[0]!.length);
  frame.fill(0xee, 0, 14);
  frame.set(FRAGS[0]!, 14);
  const r = new Ipv6Reassembler();
  r.add(Ipv6Packet.parse(frame, 14), 0);
  r.add(Ipv6Packet.parse(FRAGS[1]!), 1);
  frame.fill(0);
  const [drop] = r.expire(60_000);
  assert.equal(drop!.fragments, 2);
  const first = drop!.first!;
  assert.deepEqual(first.header.subarray(0, 14), new Uint8Array(14).fill(0xee));
  assert.deepEqual(Uint8Array.from([...first.header.subarray(14), ...first.data]), FRAGS[0]);

  const late = new Ipv6Reassembler();
  late.add(Ipv6Packet.parse(FRAGS[2]!), 0);
  assert.equal(late.expire(60_000)[0]!.first, undefined);
});

test('a non-fragment offered to the reassembler comes straight back', () => {
  const r = new Ipv6Reassembler();
  assert.deepEqual(r.add(Ipv6Packet.parse(WHOLE), 0).packet, WHOLE);
  r.add(Ipv6Packet.parse(FRAGS[0]!), 0);
  assert.equal(r.nextDeadline(), 60_000);
  assert.deepEqual(
    r.expire(60_000).map((d) => d.code),
    ['ipv6.fragment.timeout'],
  );
});
