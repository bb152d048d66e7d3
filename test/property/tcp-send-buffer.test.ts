/**
 * The send buffer against a model (one flat byte array): whatever chunks
 * are appended, released and viewed, every view shows exactly the model's
 * bytes at that position, is never empty while data remains, and never
 * longer than asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SendBuffer } from '../../src/protocols/tcp/send-buffer.js';
import { numRuns } from './runs.js';

type Op =
  | { kind: 'append'; size: number }
  | { kind: 'release'; fraction: number }
  | { kind: 'view'; at: number; max: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), size: fc.oneof(fc.nat(40), fc.nat(20000)) }),
  fc.record({
    kind: fc.constant('release' as const),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('view' as const),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    max: fc.integer({ min: 1, max: 70000 }),
  }),
);

test('views always match the bytes appended, across chunks and releases', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const b = new SendBuffer();
      let model: number[] = [];
      let modelStart = 0;
      let next = 0;
      for (const o of ops) {
        if (o.kind === 'append') {
          const chunk = Uint8Array.from({ length: o.size }, () => next++ & 0xff);
          b.append(chunk);
          model.push(...chunk);
        } else if (o.kind === 'release') {
          const n = Math.floor(model.length * o.fraction);
          b.release(n);
          model = model.slice(n);
          modelStart += n;
        } else if (model.length > 0) {
          const pos = modelStart + Math.floor(o.at * model.length);
          const v = b.view(pos, o.max);
          assert.ok(v.length > 0 && v.length <= o.max);
          const off = pos - modelStart;
          assert.deepEqual([...v], model.slice(off, off + v.length));
        }
        assert.equal(b.length, model.length);
        assert.equal(b.start, modelStart);
      }
    }),
    { numRuns: numRuns(300) },
  );
});
