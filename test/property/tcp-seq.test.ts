// Sequence-number laws (RFC 9293 section 3.4) checked across the 2^32 wrap.
import { test } from 'node:test';
import fc from 'fast-check';
import {
  seq,
  seqAdd,
  seqDiff,
  seqLt,
  seqLe,
  seqGt,
  seqGe,
  seqMax,
  seqMin,
  seqInWindow,
  type Seq,
} from '../../src/protocols/tcp/seq.js';
import { numRuns } from './runs.js';

const anySeq = fc.integer({ min: 0, max: 0xffffffff }).map(seq);
// Numbers near the wrap, where a plain '<' gets the answer wrong.
const nearWrap = fc.integer({ min: -70000, max: 70000 }).map((d) => seq(0xffffffff + d));
const aSeq = fc.oneof(anySeq, nearWrap);
/** A distance that keeps two numbers comparable (less than 2^31 apart). */
const distance = fc.integer({ min: 0, max: 0x7fffffff });
const params = { numRuns: numRuns(1000) };

test('adding then diffing gives the distance back', () => {
  fc.assert(
    fc.property(aSeq, fc.integer({ min: -0x80000000, max: 0x7fffffff }), (a, d) => {
      return seqDiff(seqAdd(a, d), a) === d;
    }),
    params,
  );
});

test('a number plus a positive distance is after it, wrap or not', () => {
  fc.assert(
    fc.property(aSeq, distance, (a, d) => {
      const b = seqAdd(a, d);
      const strict = d > 0;
      return (
        seqLe(a, b) &&
        seqGe(b, a) &&
        seqLt(a, b) === strict &&
        seqGt(b, a) === strict &&
        seqMax(a, b) === b &&
        seqMin(a, b) === a
      );
    }),
    params,
  );
});

test('exactly one of lt, eq, gt holds', () => {
  fc.assert(
    fc.property(aSeq, aSeq, (a, b) => {
      const n = Number(seqLt(a, b)) + Number(a === b) + Number(seqGt(a, b));
      return n === 1 && seqLe(a, b) === !seqGt(a, b) && seqGe(a, b) === !seqLt(a, b);
    }),
    params,
  );
});

test('results always lie in [0, 2^32)', () => {
  fc.assert(
    fc.property(aSeq, fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (a, n) => {
      const r: Seq = seqAdd(a, n);
      return Number.isInteger(r) && r >= 0 && r <= 0xffffffff;
    }),
    params,
  );
});

test('inWindow is start <= x < start + length across the wrap', () => {
  fc.assert(
    fc.property(aSeq, distance, distance, (start, len, off) => {
      const x = seqAdd(start, off);
      return seqInWindow(x, start, len) === off < len;
    }),
    params,
  );
});

test('ordering is transitive inside half the space', () => {
  fc.assert(
    fc.property(
      aSeq,
      fc.integer({ min: 0, max: 0x3fffffff }),
      fc.integer({ min: 0, max: 0x3fffffff }),
      (a, d1, d2) => {
        const b = seqAdd(a, d1);
        const c = seqAdd(b, d2);
        return seqLe(a, b) && seqLe(b, c) && seqLe(a, c);
      },
    ),
    params,
  );
});
