import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import { ipv6ToString, parseIpv6 } from '../../src/protocols/address.js';
import {
  Ipv6Packet,
  Ipv6Reassembler,
  fragmentIpv6,
  writeIpv6Header,
} from '../../src/protocols/ipv6.js';

/** Addresses with runs of zero groups, where compression matters. */
const address = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((groups) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff])));

test('IPv6 text: parse(format(a)) = a, and the format is canonical', () => {
  fc.assert(
    fc.property(address, (a) => {
      const text = ipv6ToString(a);
      assert.deepEqual(parseIpv6(text), a);
      assert.equal(ipv6ToString(parseIpv6(text.toUpperCase())), text);
      assert.ok(!/(^|:)0[0-9a-f]/.test(text), `leading zero in ${text}`);
      assert.ok(text.split('::').length <= 2);
      const groups = Array.from({ length: 8 }, (_, i) => (a[2 * i]! << 8) | a[2 * i + 1]!);
      const hasZeroRun = groups.some((g, i) => g === 0 && groups[i + 1] === 0);
      const mapped = text.startsWith('::ffff:') && text.includes('.');
      if (!mapped) assert.equal(text.includes('::'), hasZeroRun, text);
    }),
    { numRuns: numRuns(500) },
  );
});

test('fragmentIpv6 then reassembly in any order gives back the packet byte for byte', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4000, size: 'max' }),
      fc.integer({ min: 1280, max: 1500 }).chain((mtu) => fc.constantFrom(mtu, 96, 200)),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 60, size: 'max' }),
      (payload, mtu, id, order) => {
        const packet = new Uint8Array(40 + payload.length);
        const src = parseIpv6('fd00::2');
        const dst = parseIpv6('fd00::100');
        writeIpv6Header(packet, 0, { src, dst, nextHeader: 17, payloadLength: payload.length });
        packet.set(payload, 40);
        const frags = fragmentIpv6(Ipv6Packet.parse(packet), mtu, id);
        for (const f of frags) assert.ok(f.length <= mtu);
        const shuffled = frags
          .map((f, i) => ({ f, k: order[i % order.length]! * 100 + i }))
          .sort((a, b) => a.k - b.k)
          .map((x) => x.f);
        const r = new Ipv6Reassembler();
        const done = shuffled.flatMap((f) => {
          const res = r.add(Ipv6Packet.parse(f), 0);
          assert.deepEqual(res.drops, []);
          return res.packet ? [res.packet] : [];
        });
        assert.deepEqual(done, [packet]);
      },
    ),
    { numRuns: numRuns(150) },
  );
});
