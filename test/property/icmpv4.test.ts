import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import { Icmpv4Message, writeEchoReply } from '../../src/protocols/icmpv4.js';
import { checksum } from '../../src/protocols/checksum.js';

/** An echo request with any identifier, sequence and data, checksummed. */
const echoRequest = fc
  .record({
    code: fc.integer({ min: 0, max: 255 }),
    data: fc.uint8Array({ maxLength: 300, size: 'max' }),
  })
  .chain(({ code, data }) =>
    fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
      .map(([id, seq]) => {
        const m = new Uint8Array(8 + data.length);
        m.set([8, code, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]);
        m.set(data, 8);
        const c = checksum(m, 0, m.length);
        m[2] = c >> 8;
        m[3] = c & 0xff;
        return m;
      }),
  );

test('the adjusted echo reply checksum equals a full recomputation', () => {
  fc.assert(
    fc.property(echoRequest, (req) => {
      const out = new Uint8Array(req.length);
      writeEchoReply(Icmpv4Message.parse(req), out, 0);
      const full = Uint8Array.from(req);
      full[0] = 0;
      full[2] = full[3] = 0;
      const c = checksum(full, 0, full.length);
      full[2] = c >> 8;
      full[3] = c & 0xff;
      assert.deepEqual(out, full);
      assert.equal(Icmpv4Message.parse(out).type, 0);
    }),
    { numRuns: numRuns(300) },
  );
});
