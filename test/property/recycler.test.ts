// The recycler's safety property under any sequence of takes and gives:
// memory still held by a caller (taken, not given back) is never handed
// out again, so no two live views ever share a byte. Each live view is
// filled with its own tag when taken and must still hold it when given.
import { test } from 'node:test';
import fc from 'fast-check';
import { Recycler } from '../../src/streams/recycler.js';
import { numRuns } from './runs.js';

type Op = { kind: 'take'; n: number } | { kind: 'give'; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('take' as const), n: fc.integer({ min: 1, max: 700 }) }),
  fc.record({ kind: fc.constant('give' as const), pick: fc.nat() }),
);

test('live views never overlap, whatever is taken and given back', () => {
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 200 }),
      fc.integer({ min: 0, max: 3 }),
      (ops, maxFree) => {
        const r = new Recycler(1024, maxFree);
        const live: { view: Buffer; tag: number }[] = [];
        let tag = 0;
        const intact = (v: { view: Buffer; tag: number }): boolean =>
          v.view.every((b) => b === v.tag);
        for (const o of ops) {
          if (o.kind === 'take') {
            tag = (tag % 255) + 1;
            const view = r.take(o.n);
            view.fill(tag);
            live.push({ view, tag });
          } else if (live.length > 0) {
            const [v] = live.splice(o.pick % live.length, 1);
            if (!intact(v!)) return false;
            r.give(v!.view);
          }
        }
        return live.every(intact);
      },
    ),
    { numRuns: numRuns(300) },
  );
});
