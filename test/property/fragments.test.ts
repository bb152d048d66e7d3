/**
 * Fragment reassembly under arbitrary fragment sets: overlaps, duplicates,
 * missing pieces, any order, several datagrams at once, time passing, and
 * tight memory bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import {
  Ipv4Reassembler,
  Reassembler,
  fragmentIpv4,
  type Fragment,
  type FragmentDrop,
} from '../../src/protocols/fragments.js';
import { Ipv4Packet, writeIpv4Header } from '../../src/protocols/ipv4.js';

const HEADER = new Uint8Array(20);
const LIMIT = 65515;

/** Sorts `items` by random keys: an arbitrary order. */
function permute<T>(items: T[], keys: number[]): T[] {
  return items
    .map((item, i) => ({ item, key: keys[i % Math.max(1, keys.length)]! * 1000 + i }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.item);
}

/** A payload cut into pieces at multiples of 8, plus extra pieces of it. */
const fragmentSet = fc
  .record({
    payload: fc.uint8Array({ minLength: 1, maxLength: 3000, size: 'max' }),
    cuts: fc.array(fc.nat(), { maxLength: 12, size: 'max' }),
    duplicates: fc.array(fc.nat(), { maxLength: 4 }),
    overlaps: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 }),
    missing: fc.array(fc.nat(), { maxLength: 2 }),
    order: fc.array(fc.nat(), { minLength: 1, maxLength: 30, size: 'max' }),
  })
  .map(({ payload, cuts, duplicates, overlaps, missing, order }) => {
    const units = Math.ceil(payload.length / 8);
    const bounds = [...new Set([0, ...cuts.map((c) => (c % units) * 8), payload.length])];
    bounds.sort((a, b) => a - b);
    const piece = (from: number, to: number): Fragment => ({
      offset: from,
      more: to < payload.length,
      data: payload.subarray(from, to),
      header: HEADER,
      limit: LIMIT,
    });
    const pieces = bounds.slice(1).map((to, i) => piece(bounds[i]!, to));
    const dups = duplicates.map((d) => pieces[d % pieces.length]!);
    const overs = overlaps.map(([a, b]) => {
      const from = (a % units) * 8;
      return piece(from, Math.min(payload.length, from + 8 + (b % units) * 8));
    });
    const gone = new Set(missing.map((m) => m % pieces.length));
    const kept = pieces.filter((_, i) => !gone.has(i));
    const all = permute([...kept, ...dups, ...overs], order);
    return { payload, all, intact: gone.size === 0 && overs.length === 0 };
  });

test('reassembles exactly the original, and always when nothing is missing or overlapping', () => {
  fc.assert(
    fc.property(fragmentSet, ({ payload, all, intact }) => {
      const r = new Reassembler('ipv4');
      const delivered: Uint8Array[] = [];
      for (const f of all) {
        const res = r.add('k', f, 0);
        if (res.datagram) delivered.push(res.datagram.payload);
      }
      for (const d of delivered) assert.deepEqual(d, payload);
      if (intact) assert.ok(delivered.length >= 1, 'a complete set must reassemble');
    }),
    { numRuns: numRuns(300) },
  );
});

/** Arbitrary fragments of a few datagrams, with time passing between them. */
const chaos = fc.record({
  maxBytes: fc.integer({ min: 100, max: 6000 }),
  maxDatagrams: fc.integer({ min: 1, max: 4 }),
  timeoutMs: fc.integer({ min: 1, max: 60_000 }),
  steps: fc.array(
    fc.record({
      key: fc.constantFrom('a', 'b', 'c', 'd'),
      units: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 8150, max: 8191 })),
      length: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(8, 16, 24)),
      more: fc.boolean(),
      fill: fc.integer({ min: 0, max: 255 }),
      header: fc.integer({ min: 8, max: 60 }),
      advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30_000 })),
    }),
    { maxLength: 60, size: 'max' },
  ),
});

test('arbitrary fragments never crash, stay within bounds, and are all accounted for', () => {
  fc.assert(
    fc.property(chaos, ({ maxBytes, maxDatagrams, timeoutMs, steps }) => {
      const r = new Reassembler('ipv6', { maxBytes, maxDatagrams, timeoutMs });
      let now = 0;
      let offered = 0;
      let offeredBytes = 0;
      let accounted = 0;
      let accountedBytes = 0;
      const count = (drops: readonly FragmentDrop[]) => {
        for (const d of drops) {
          accounted += d.fragments;
          accountedBytes += d.bytes;
          assert.equal(d.code, `ipv6.fragment.${d.reason}`);
        }
      };
      for (const s of steps) {
        now += s.advance;
        const data = new Uint8Array(s.length).fill(s.fill);
        const header = new Uint8Array(s.header);
        const f = { offset: s.units * 8, more: s.more, data, header, limit: 65535 - s.header };
        offered += 1;
        offeredBytes += s.length;
        const res = r.add(s.key, f, now);
        count(res.drops);
        if (res.datagram) {
          accounted += res.datagram.fragments;
          accountedBytes += res.datagram.payload.length;
        }
        assert.ok(r.bytesHeld <= maxBytes, `held ${r.bytesHeld} > ${maxBytes}`);
        assert.ok(r.datagramsHeld <= maxDatagrams);
        const deadline = r.nextDeadline();
        if (deadline !== undefined) assert.ok(deadline > now);
      }
      count(r.expire(now + timeoutMs));
      assert.equal(r.datagramsHeld, 0);
      assert.equal(r.bytesHeld, 0);
      assert.equal(accounted, offered);
      assert.equal(accountedBytes, offeredBytes);
    }),
    { numRuns: numRuns(300) },
  );
});

test('fragmentIpv4 then reassembly in any order gives back the packet byte for byte', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4000, size: 'max' }),
      fc.integer({ min: 68, max: 1500 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 80, size: 'max' }),
      (payload, mtu, id, order) => {
        const packet = new Uint8Array(20 + payload.length);
        writeIpv4Header(packet, 0, {
          src: 0x0a000202,
          dst: 0x0a000264,
          protocol: 17,
          payloadLength: payload.length,
          identification: id,
        });
        packet.set(payload, 20);
        const frags = fragmentIpv4(Ipv4Packet.parse(packet, 0), mtu);
        for (const f of frags) assert.ok(f.length <= mtu);
        if (frags.length === 1) {
          assert.deepEqual(frags[0], packet);
          return;
        }
        const r = new Ipv4Reassembler();
        const out = permute(frags, order).map((f) => r.add(Ipv4Packet.parse(f, 0), 0));
        const done = out.flatMap((x) => (x.packet ? [x.packet] : []));
        assert.deepEqual(done, [packet]);
        assert.ok(out.every((x) => x.drops.length === 0));
      },
    ),
    { numRuns: numRuns(200) },
  );
});
