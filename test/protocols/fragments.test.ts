import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAGMENT_OVERHEAD,
  Ipv4Reassembler,
  Reassembler,
  fragmentIpv4,
  type FragmentDrop,
} from '../../src/protocols/fragments.js';
import { Ipv4Packet, writeIpv4Header } from '../../src/protocols/ipv4.js';
import { ParseError } from '../../src/protocols/errors.js';

// Made offline with Python; tshark reassembles each set ("Reassembled IPv4
// length: 108") and finds the UDP checksum inside correct.
// A UDP datagram 10.0.2.2:40001 -> 10.0.2.100:40000 with 100 bytes of data.
const WHOLE = hex(
  '450000804242000040111fc60a0002020a0002649c419c40006c0325030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c333a41484f565d646b727980878e959ca3aab1b8',
);
// Its fragments at MTU 68: 48 + 48 + 12 bytes.
const FRAGS = [
  '4500004442422000401100020a0002020a0002649c419c40006c0325030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d14',
  '45000044424220064011fffb0a0002020a0002641b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c333a41484f565d64',
  '450000204242000c4011201a0a0002020a0002646b727980878e959ca3aab1b8',
].map(hex);
// The same datagram with options: record route (not copied into later
// fragments) and router alert (copied).
const WHOLE_OPTS = hex(
  '4800008c4343000040110c1e0a0002020a0002640707040000000094040000009c419c40006c0325030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c333a41484f565d646b727980878e959ca3aab1b8',
);
// Its fragments at MTU 80.
const FRAGS_OPTS = [
  '48000050434320004011ec590a0002020a0002640707040000000094040000009c419c40006c0325030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d14',
  '4600005043432006401169ea0a0002020a000264940400001b222930373e454c535a61686f767d848b9299a0a7aeb5bcc3cad1d8dfe6edf4fb020910171e252c333a41484f565d646b727980878e959c',
  '4600001c4343000d40118a170a0002020a00026494040000a3aab1b8',
].map(hex);

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

function ip(bytes: Uint8Array): Ipv4Packet {
  return Ipv4Packet.parse(bytes, 0);
}

function codes(drops: readonly FragmentDrop[]): string[] {
  return drops.map((d) => d.code);
}

/** Feeds packets in order; returns the completed packets and all drops. */
function feed(r: Ipv4Reassembler, packets: Uint8Array[], now = 0) {
  const done: Uint8Array[] = [];
  const drops: FragmentDrop[] = [];
  for (const p of packets) {
    const res = r.add(ip(p), now);
    if (res.packet) done.push(res.packet);
    drops.push(...res.drops);
  }
  return { done, drops };
}

test('fragments a datagram byte for byte, with and without options', () => {
  assert.deepEqual(fragmentIpv4(ip(WHOLE), 68), FRAGS);
  assert.deepEqual(fragmentIpv4(ip(WHOLE_OPTS), 80), FRAGS_OPTS);
});

test('a datagram that fits is returned as it is', () => {
  const out = fragmentIpv4(ip(WHOLE), WHOLE.length);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0], WHOLE);
});

test('refuses to fragment with DF set or an MTU too small', () => {
  const df = Uint8Array.from(WHOLE);
  writeIpv4Header(df, 0, {
    src: 0x0a000202,
    dst: 0x0a000264,
    protocol: 17,
    payloadLength: 108,
    identification: 0x4242,
    dontFragment: true,
  });
  assert.throws(() => fragmentIpv4(ip(df), 68), { code: 'ipv4.fragment.dont-fragment' });
  assert.throws(() => fragmentIpv4(ip(WHOLE), 27), { code: 'ipv4.fragment.mtu-too-small' });
  assert.throws(() => fragmentIpv4(ip(WHOLE_OPTS), 39), { code: 'ipv4.fragment.mtu-too-small' });
  assert.equal(fragmentIpv4(ip(WHOLE), 28).length, 14);
});

test('a fragment split again keeps its offset and its MF flag', () => {
  const first = fragmentIpv4(ip(FRAGS[0]!), 44);
  assert.equal(first.length, 2);
  assert.deepEqual(
    first.map((f) => [ip(f).fragmentOffset, ip(f).moreFragments]),
    [
      [0, true],
      [24, true],
    ],
  );
  const second = fragmentIpv4(ip(FRAGS[1]!), 44);
  assert.deepEqual(
    second.map((f) => [ip(f).fragmentOffset, ip(f).moreFragments]),
    [
      [48, true],
      [72, true],
    ],
  );
  const { done } = feed(new Ipv4Reassembler(), [...second, FRAGS[2]!, ...first]);
  assert.deepEqual(done, [WHOLE]);
});

test('reassembles byte for byte in any order, exactly when complete', () => {
  for (const order of [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
    [2, 0, 1],
  ]) {
    const r = new Ipv4Reassembler();
    const results = order.map((i) => r.add(ip(FRAGS[i]!), 0));
    assert.deepEqual(
      results.map((x) => x.packet !== undefined),
      [false, false, true],
    );
    assert.deepEqual(results[2]!.packet, WHOLE);
    assert.equal(results[2]!.fragments, 3);
    assert.deepEqual(codes(results.flatMap((x) => x.drops)), []);
    assert.equal(r.inner.datagramsHeld, 0);
    assert.equal(r.inner.bytesHeld, 0);
  }
});

test('reassembly keeps the first fragment options', () => {
  const { done } = feed(new Ipv4Reassembler(), [FRAGS_OPTS[2]!, FRAGS_OPTS[0]!, FRAGS_OPTS[1]!]);
  assert.deepEqual(done, [WHOLE_OPTS]);
});

test('two datagrams interleaved are told apart by their key', () => {
  const { done } = feed(new Ipv4Reassembler(), [
    FRAGS[0]!,
    FRAGS_OPTS[0]!,
    FRAGS_OPTS[2]!,
    FRAGS[2]!,
    FRAGS[1]!,
    FRAGS_OPTS[1]!,
  ]);
  assert.deepEqual(done, [WHOLE, WHOLE_OPTS]);
});

test('a duplicate is dropped and the first copy kept', () => {
  const altered = Uint8Array.from(FRAGS[1]!);
  altered[30] ^= 0xff;
  const { done, drops } = feed(new Ipv4Reassembler(), [FRAGS[1]!, FRAGS[1]!, altered, FRAGS[0]!]);
  assert.deepEqual(done, []);
  assert.deepEqual(codes(drops), ['ipv4.fragment.duplicate', 'ipv4.fragment.duplicate']);
  const r = new Ipv4Reassembler();
  const again = feed(r, [FRAGS[1]!, altered, FRAGS[0]!, FRAGS[2]!]);
  assert.deepEqual(again.done, [WHOLE]);
});

/** A fragment of the WHOLE datagram's payload at [offset, offset+length). */
function slice(offset: number, length: number, more: boolean, fill?: number): Uint8Array {
  const payload = WHOLE.subarray(20);
  const data = payload.slice(offset, offset + length);
  if (fill !== undefined) data.fill(fill);
  const out = new Uint8Array(20 + length);
  writeIpv4Header(out, 0, {
    src: 0x0a000202,
    dst: 0x0a000264,
    protocol: 17,
    payloadLength: length,
    identification: 0x4242,
  });
  out.set(data, 20);
  const field = (more ? 0x2000 : 0) | (offset / 8);
  out[6] = field >> 8;
  out[7] = field & 0xff;
  out[10] = out[11] = 0;
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (out[i]! << 8) | out[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  out[10] = (~s >> 8) & 0xff;
  out[11] = ~s & 0xff;
  return out;
}

test('an overlap discards the whole datagram (RFC 5722 policy)', () => {
  const r = new Ipv4Reassembler();
  const { done, drops } = feed(r, [FRAGS[0]!, slice(40, 16, true, 0xee), FRAGS[1]!, FRAGS[2]!]);
  assert.deepEqual(done, []);
  assert.equal(drops.length, 1);
  assert.equal(drops[0]!.code, 'ipv4.fragment.overlap');
  assert.equal(drops[0]!.fragments, 2);
  assert.equal(drops[0]!.bytes, 48 + 16);
  assert.equal(r.inner.datagramsHeld, 1, 'the later fragments start over and wait');
});

test('every overlap shape is caught', () => {
  const shapes: Array<[number, number, boolean]> = [
    [0, 56, true], // covers the first and part of the next
    [8, 8, true], // inside the first
    [40, 24, true], // straddles a boundary
    [0, 104, true], // covers everything held
    [96, 8, true], // the head of the last fragment
  ];
  for (const [offset, length, more] of shapes) {
    const r = new Ipv4Reassembler();
    const { drops } = feed(r, [FRAGS[0]!, FRAGS[2]!, slice(offset, length, more)]);
    assert.deepEqual(codes(drops), ['ipv4.fragment.overlap'], `${offset}+${length}`);
  }
});

test('contradicting ends discard the datagram', () => {
  const twoEnds = feed(new Ipv4Reassembler(), [FRAGS[2]!, slice(96, 8, false)]);
  assert.deepEqual(codes(twoEnds.drops), ['ipv4.fragment.inconsistent']);
  const pastEnd = feed(new Ipv4Reassembler(), [FRAGS[2]!, slice(104, 8, true)]);
  assert.deepEqual(codes(pastEnd.drops), ['ipv4.fragment.inconsistent']);
  const endBeforeData = feed(new Ipv4Reassembler(), [FRAGS[1]!, slice(48, 8, false)]);
  assert.deepEqual(codes(endBeforeData.drops), ['ipv4.fragment.inconsistent']);
  const firstAsLast = feed(new Ipv4Reassembler(), [FRAGS[0]!, FRAGS[2]!, slice(0, 48, false)]);
  assert.deepEqual(codes(firstAsLast.drops), ['ipv4.fragment.inconsistent']);
});

test('a non-last fragment must be a positive multiple of 8 bytes', () => {
  const { drops } = feed(new Ipv4Reassembler(), [slice(0, 12, true), slice(0, 0, true)]);
  assert.deepEqual(codes(drops), ['ipv4.fragment.bad-length', 'ipv4.fragment.bad-length']);
});

test('a fragment reaching past 65535 bytes is refused', () => {
  const r = new Reassembler('ipv4');
  const header = new Uint8Array(20);
  const at = (offset: number, length: number) =>
    r.add('k', { offset, more: true, data: new Uint8Array(length), header, limit: 65515 }, 0);
  assert.deepEqual(codes(at(65504, 8).drops), []);
  assert.deepEqual(codes(at(65512, 8).drops), ['ipv4.fragment.oversize']);
  assert.deepEqual(codes(at(65496, 16).drops), ['ipv4.fragment.overlap']);
});

test('the first fragment header decides the reassembled size', () => {
  const r = new Reassembler('ipv6');
  const add = (offset: number, length: number, more: boolean, limit: number) =>
    r.add('k', { offset, more, data: new Uint8Array(length), header: new Uint8Array(8), limit }, 0);
  add(8, 8, false, 100);
  const res = add(0, 8, true, 12);
  assert.equal(res.datagram, undefined);
  assert.deepEqual(codes(res.drops), ['ipv6.fragment.oversize']);
  assert.equal(res.drops[0]!.fragments, 2);
});

test('a datagram times out from its first fragment, quoting the first fragment', () => {
  const r = new Ipv4Reassembler();
  assert.equal(r.nextDeadline(), undefined);
  feed(r, [FRAGS[0]!], 1000);
  feed(r, [FRAGS[1]!], 20_000);
  assert.equal(r.nextDeadline(), 31_000);
  assert.deepEqual(r.expire(30_999), []);
  const drops = r.expire(31_000);
  assert.deepEqual(codes(drops), ['ipv4.fragment.timeout']);
  assert.equal(drops[0]!.fragments, 2);
  assert.equal(drops[0]!.bytes, 96);
  assert.deepEqual(drops[0]!.first!.header, FRAGS[0]!.subarray(0, 20));
  assert.deepEqual(drops[0]!.first!.data, FRAGS[0]!.subarray(20));
  assert.equal(r.inner.datagramsHeld, 0);
  assert.equal(r.inner.bytesHeld, 0);

  const late = feed(r, [FRAGS[2]!], 40_000);
  assert.deepEqual(late.done, []);
  assert.deepEqual(codes(feed(r, [FRAGS[0]!], 70_000).drops), ['ipv4.fragment.timeout']);
  assert.equal(r.expire(1e9)[0]!.first?.data.length, 48);
});

test('the first fragment comes back on timeout as it arrived, link header and all', () => {
  const frame = new Uint8Array(14 + FRAGS[0]!.length);
  frame.fill(0xee, 0, 14);
  frame.set(FRAGS[0]!, 14);
  const r = new Ipv4Reassembler();
  r.add(Ipv4Packet.parse(frame, 14), 0);
  frame.fill(0); // the caller may reuse its buffer at once
  const first = r.expire(30_000)[0]!.first!;
  assert.deepEqual(
    first.header,
    Uint8Array.from([...new Uint8Array(14).fill(0xee), ...FRAGS[0]!.subarray(0, 20)]),
  );
  assert.deepEqual(first.data, FRAGS[0]!.subarray(20));
});

test('a timeout without the first fragment quotes nothing; IPv6 waits 60 s', () => {
  const r = new Ipv4Reassembler({ timeoutMs: 5 });
  feed(r, [FRAGS[2]!], 0);
  const drops = r.expire(5);
  assert.equal(drops[0]!.first, undefined);
  assert.equal(new Reassembler('ipv6').timeoutMs, 60_000);
  assert.equal(new Reassembler('ipv4').timeoutMs, 30_000);
});

test('the number of datagrams held is bounded; the oldest goes first', () => {
  const r = new Ipv4Reassembler({ maxDatagrams: 1 });
  const { done, drops } = feed(r, [FRAGS[0]!, FRAGS_OPTS[0]!, FRAGS_OPTS[1]!, FRAGS_OPTS[2]!]);
  assert.deepEqual(done, [WHOLE_OPTS]);
  assert.deepEqual(codes(drops), ['ipv4.fragment.evicted']);
  assert.equal(drops[0]!.fragments, 1);
});

test('the bytes held are bounded; the oldest goes first', () => {
  // The first fragment's header is charged twice: once to rebuild the
  // datagram, once as it arrived, for a time exceeded's quote.
  const cost = (f: Uint8Array, first: boolean) =>
    f.length - 20 + FRAGMENT_OVERHEAD + (first ? 40 : 0);
  const maxBytes = cost(FRAGS[0]!, true) + cost(FRAGS[1]!, false);
  const r = new Ipv4Reassembler({ maxBytes });
  feed(r, [FRAGS[0]!, FRAGS[1]!]);
  assert.equal(r.inner.bytesHeld, maxBytes);
  const { drops } = feed(r, [FRAGS_OPTS[2]!]);
  assert.deepEqual(codes(drops), ['ipv4.fragment.evicted']);
  assert.equal(drops[0]!.fragments, 2);
  assert.ok(r.inner.bytesHeld <= maxBytes);
  assert.equal(r.inner.datagramsHeld, 1);
});

test('a datagram that alone outgrows the bound is dropped, fragment and all', () => {
  const maxBytes = 2 * (48 + FRAGMENT_OVERHEAD);
  const r = new Ipv4Reassembler({ maxBytes });
  const { drops } = feed(r, [FRAGS[1]!, FRAGS[0]!]);
  assert.deepEqual(codes(drops), ['ipv4.fragment.evicted']);
  assert.equal(drops[0]!.fragments, 2);
  assert.equal(r.inner.bytesHeld, 0);
  const tiny = new Ipv4Reassembler({ maxBytes: 50 });
  assert.deepEqual(codes(feed(tiny, [FRAGS[1]!]).drops), ['ipv4.fragment.too-large']);
});

test('bad input to the fragmenter is a ParseError, never anything else', () => {
  assert.throws(() => fragmentIpv4(ip(WHOLE), 0), ParseError);
});
