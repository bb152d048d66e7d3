// The main TCP property: two of our endpoints over a faulty simulated link
// deliver each direction's bytes exactly once, in order, and both end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Sim, scenarioArb } from './tcp-sim.js';
import { numRuns } from './runs.js';

test('two endpoints over a faulty link: exactly once, in order, both freed', () => {
  fc.assert(
    fc.property(scenarioArb, (sc) => {
      const r = new Sim(sc).run();
      const [a, b] = r.sides;
      const aborted = a.aborted || b.aborted;
      const gaveUp = a.freed === 'timeout' || b.freed === 'timeout';
      if (!aborted && !gaveUp) {
        assert.equal(b.delivered, a.written, 'active -> passive bytes');
        assert.equal(a.delivered, b.written, 'passive -> active bytes');
        assert.ok(a.sawFin && b.sawFin, 'both FINs delivered');
      }
      // Without loss nothing may time out.
      if (sc.faults.loss === 0 && sc.faults.corrupt === 0 && sc.faults.truncate === 0) {
        assert.ok(!gaveUp, 'a clean link never times out');
      }
    }),
    { numRuns: numRuns(200) },
  );
});
