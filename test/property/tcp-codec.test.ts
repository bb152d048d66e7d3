// The TCP codec: what is encoded parses back to the same representation,
// and no byte string makes the parser throw anything but a ParseError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  TcpSegment,
  TcpControl,
  encodeTcpSegment,
  encodedLength,
  type TcpRepr,
} from '../../src/protocols/tcp/segment.js';
import { seq } from '../../src/protocols/tcp/seq.js';
import { ParseError } from '../../src/protocols/errors.js';
import { pseudoSumV4, pseudoSumV6 } from '../../src/protocols/checksum.js';
import { numRuns } from './runs.js';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const aSeq = u32.map(seq);

const repr: fc.Arbitrary<TcpRepr> = fc
  .record({
    srcPort: u16,
    dstPort: u16,
    seq: aSeq,
    ack: fc.option(aSeq, { nil: undefined }),
    control: fc.constantFrom(TcpControl.None, TcpControl.Syn, TcpControl.Fin, TcpControl.Rst),
    push: fc.boolean(),
    window: u16,
    extraFlags: fc.constantFrom(0, 0x20, 0x40, 0x80, 0x100, 0x1e0),
    urgent: u16,
    mss: fc.option(u16, { nil: undefined }),
    windowScale: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    sackPermitted: fc.boolean(),
    tsVal: fc.option(u32, { nil: undefined }),
    tsEcr: u32,
    blocks: fc.integer({ min: 0, max: 4 }),
    edges: fc.array(aSeq, { minLength: 8, maxLength: 8 }),
    payload: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ blocks, edges, ...r }) => {
    const room =
      40 -
      (r.mss !== undefined ? 4 : 0) -
      (r.tsVal !== undefined ? 12 : r.sackPermitted ? 4 : 0) -
      (r.windowScale !== undefined ? 4 : 0);
    const fit = Math.min(blocks, Math.floor((room - 4) / 8));
    return {
      ...r,
      tsEcr: r.tsVal === undefined ? 0 : r.tsEcr,
      sackBlocks: fit > 0 ? edges.slice(0, 2 * fit) : undefined,
    };
  });

const pseudo = fc.oneof(
  fc.record({ src: u32, dst: u32 }).map(
    ({ src, dst }) =>
      (n: number) =>
        pseudoSumV4(src, dst, 6, n),
  ),
  fc
    .record({
      src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    })
    .map(
      ({ src, dst }) =>
        (n: number) =>
          pseudoSumV6(src, dst, 6, n),
    ),
);

test('encode then parse gives the representation back', () => {
  fc.assert(
    fc.property(repr, pseudo, fc.nat(16), (r, ps, at) => {
      const n = encodedLength(r);
      const buf = new Uint8Array(at + n + 5);
      assert.equal(encodeTcpSegment(buf, at, r, ps(n)), at + n);
      const s = TcpSegment.parse(buf, at, n, ps(n));
      const back = s.toRepr();
      assert.deepEqual(
        { ...back, payload: [...back.payload] },
        {
          ...r,
          sackPermitted: r.sackPermitted,
          payload: [...r.payload],
        },
      );
    }),
    { numRuns: numRuns(500) },
  );
});

test('parse then encode gives the bytes back', () => {
  fc.assert(
    fc.property(repr, (r) => {
      const n = encodedLength(r);
      const a = new Uint8Array(n);
      encodeTcpSegment(a, 0, r, 12345);
      const b = new Uint8Array(n);
      encodeTcpSegment(b, 0, TcpSegment.parse(a, 0, n, 12345).toRepr(), 12345);
      assert.deepEqual(b, a);
    }),
    { numRuns: numRuns(300) },
  );
});

function onlyParseErrors(f: () => unknown): boolean {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
  }
  return true;
}

test('arbitrary bytes never throw anything but ParseError', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 120 }),
      fc.nat(130),
      fc.nat(8),
      fc.option(u32),
      (b, len, off, ps) =>
        onlyParseErrors(() => {
          const s = TcpSegment.parse(b, off, len, ps ?? undefined);
          // Everything a parsed segment offers is safe to read.
          void [s.seq, s.ack, s.window, s.mss, s.windowScale, s.tsVal, s.payload, s.seqLength];
          for (let i = 0; i < s.sackBlockCount; i++) void [s.sackLeft(i), s.sackRight(i)];
        }),
    ),
    { numRuns: numRuns(2000) },
  );
});

test('mutated valid segments never throw anything but ParseError', () => {
  fc.assert(
    fc.property(
      repr,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      (r, edits, cut) => {
        const n = encodedLength(r);
        const b = new Uint8Array(n);
        encodeTcpSegment(b, 0, r, 0);
        for (const [at, v] of edits) b[at % n] = v;
        return onlyParseErrors(() => TcpSegment.parse(b, 0, cut % (n + 1)).toRepr());
      },
    ),
    { numRuns: numRuns(1000) },
  );
});
