/**
 * The fault-injection operator under virtual time: each fault alone in a
 * marble diagram, then the seeded fractions, completion, errors and
 * unsubscription (nothing held, no timer left behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  faults,
  seededRandom,
  type FaultsOperator,
  type FaultsOptions,
} from '../../src/operators/faults.js';

function marbles(run: (helpers: Parameters<Parameters<TestScheduler['run']>[0]>[0]) => void): void {
  new TestScheduler((actual, expected) => assert.deepEqual(actual, expected)).run(run);
}

/** Frames 0..n-1 pushed through `faults` synchronously; what comes out. */
function pushThrough(
  n: number,
  options: FaultsOptions,
): { out: number[]; op: FaultsOperator<number> } {
  const scheduler = new TestScheduler(assert.deepEqual);
  const op = faults<number>({ ...options, scheduler });
  const input = new Subject<number>();
  const out: number[] = [];
  input.pipe(op).subscribe((v) => out.push(v));
  for (let i = 0; i < n; i++) input.next(i);
  input.complete();
  scheduler.flush();
  return { out, op };
}

test('no faults: every frame passes at once, completion too', () => {
  marbles(({ cold, expectObservable }) => {
    expectObservable(cold('-a-b-c-|').pipe(faults())).toBe('-a-b-c-|');
  });
});

test('drop 1: nothing passes but completion', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ drop: 1 });
    expectObservable(cold('-a-b-c-|').pipe(op)).toBe('-------|');
  });
});

test('duplicate 1: every frame twice in a row', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ duplicate: 1 });
    expectObservable(cold('a 9ms b 9ms |').pipe(op)).toBe('(aa) 6ms (bb) 6ms |');
  });
});

test('reorder 1: each held frame leaves right after its successor', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ reorder: 1, reorderMs: 100 });
    const source = cold('a 9ms b 9ms c 9ms d 9ms |');
    expectObservable(source.pipe(op)).toBe('10ms (ba) 16ms (dc) 6ms |');
  });
});

test('reorder 1: a held frame with no successor leaves after reorderMs', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ reorder: 1, reorderMs: 5 });
    expectObservable(cold('a 19ms |').pipe(op)).toBe('5ms a 14ms |');
  });
});

test('reorder: completion releases the held frame at once', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ reorder: 1, reorderMs: 50 });
    expectObservable(cold('a 2ms |').pipe(op)).toBe('3ms (a|)');
  });
});

test('delayMs: every frame later by the same time, order kept, completion after the last', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ delayMs: 3 });
    expectObservable(cold('-a-b-|').pipe(op)).toBe('----a-(b|)');
  });
});

test('reorder and delay together: swapped, then delayed', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ reorder: 1, reorderMs: 100, delayMs: 4 });
    expectObservable(cold('a 9ms b 9ms |').pipe(op)).toBe('14ms (ba) 2ms |');
  });
});

test('duplicate and reorder together: both copies held, then after the successor', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ duplicate: 1, reorder: 1, reorderMs: 100 });
    expectObservable(cold('a 9ms b 9ms |').pipe(op)).toBe('10ms (bbaa) 4ms |');
  });
});

test('an error is passed on at once, held and delayed frames discarded', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ delayMs: 5 });
    expectObservable(cold('a-b-#').pipe(op)).toBe('4ms #');
  });
});

test('unsubscription: nothing emitted afterwards, held frames let go, no timer left', () => {
  const scheduler = new TestScheduler(assert.deepEqual);
  const op = faults<string>({ reorder: 1, reorderMs: 50, delayMs: 10, scheduler });
  const input = new Subject<string>();
  const out: string[] = [];
  const subscription = input.pipe(op).subscribe((v) => out.push(v));
  input.next('a'); // held for reordering
  input.next('b'); // b, then a, into the delay queue
  input.next('c'); // held again
  assert.ok(scheduler.actions.length > 0, 'timers are pending');
  assert.equal(input.observed, true);

  subscription.unsubscribe();
  assert.equal(scheduler.actions.length, 0, 'every timer cancelled');
  assert.equal(input.observed, false, 'the source is unsubscribed');
  scheduler.flush();
  assert.deepEqual(out, []);
  assert.equal(op.stats.discarded, 3);
  assert.equal(op.stats.emitted, 0);
});

test('marble unsubscription: frames still delayed at the cut never appear', () => {
  marbles(({ cold, expectObservable }) => {
    const op = faults<string>({ delayMs: 3 });
    expectObservable(cold('ab-c-d-|').pipe(op), '^ 4ms !').toBe('---ab-');
  });
});

test('fractions: the counts are near the fractions, and stats add up', () => {
  const n = 20_000;
  const { out, op } = pushThrough(n, { drop: 0.1, duplicate: 0.05, reorder: 0.05, seed: 7 });
  const s = op.stats;
  assert.equal(s.seen, n);
  assert.ok(Math.abs(s.dropped / n - 0.1) < 0.01, `dropped ${s.dropped}`);
  assert.ok(Math.abs(s.duplicated / (n - s.dropped) - 0.05) < 0.01, `duplicated ${s.duplicated}`);
  assert.ok(s.reordered > 0.03 * n && s.reordered < 0.06 * n, `reordered ${s.reordered}`);
  assert.equal(s.emitted, n - s.dropped + s.duplicated);
  assert.equal(out.length, s.emitted);
  assert.equal(s.discarded, 0);

  const unique = new Set(out);
  assert.equal(unique.size, n - s.dropped, 'every frame not dropped arrives');
  const swaps = out.filter((v, i) => i > 0 && v < out[i - 1]!).length;
  assert.ok(swaps > 0 && swaps <= s.reordered, `swaps ${swaps}`);
});

test('the same seed gives the same faults; another seed, others', () => {
  const options = { drop: 0.2, duplicate: 0.1, reorder: 0.1 };
  const a = pushThrough(2000, { ...options, seed: 42 }).out;
  const b = pushThrough(2000, { ...options, seed: 42 }).out;
  const c = pushThrough(2000, { ...options, seed: 43 }).out;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('each frame draws three numbers: raising one fraction keeps the other decisions', () => {
  const dropsOnly = pushThrough(5000, { drop: 0.1, seed: 3 }).out;
  const withDup = pushThrough(5000, { drop: 0.1, duplicate: 0.5, seed: 3 }).out;
  assert.deepEqual([...new Set(withDup)], dropsOnly);
});

test('seededRandom: uniform in [0, 1), deterministic', () => {
  const r = seededRandom(99);
  const xs = Array.from({ length: 100_000 }, r);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  const buckets = new Array<number>(10).fill(0);
  for (const x of xs) buckets[Math.floor(x * 10)]!++;
  for (const b of buckets) assert.ok(Math.abs(b - 10_000) < 500, `bucket ${b}`);
  const again = seededRandom(99);
  assert.deepEqual(Array.from({ length: 5 }, again), xs.slice(0, 5));
});

test('options out of range are refused', () => {
  assert.throws(() => faults({ drop: 1.5 }), RangeError);
  assert.throws(() => faults({ reorder: -0.1 }), RangeError);
  assert.throws(() => faults({ delayMs: Number.NaN }), RangeError);
});
