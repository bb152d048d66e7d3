import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import {
  DnsTcpDeframer,
  encodeDnsQuery,
  encodeName,
  frameDnsTcp,
  parseQuestion,
  readName,
} from '../../src/protocols/dns.js';

/** Wire names: up to 255 bytes of labels of any bytes. */
const wireName = fc
  .array(fc.uint8Array({ minLength: 1, maxLength: 63 }), { maxLength: 8 })
  .filter((labels) => labels.reduce((n, l) => n + 1 + l.length, 1) <= 255)
  .map((labels) => Uint8Array.from([...labels.flatMap((l) => [l.length, ...l]), 0]));

test('DNS names: wire -> text -> wire is the identity, and queries carry them', () => {
  fc.assert(
    fc.property(wireName, fc.integer({ min: 0, max: 0xffff }), (wire, type) => {
      const { name, end } = readName(wire, 0, 0, wire.length);
      assert.equal(end, wire.length);
      assert.deepEqual(encodeName(name), wire);
      const q = parseQuestion(encodeDnsQuery(7, name, type));
      assert.deepEqual([q.name, q.type, q.class], [name, type, 1]);
    }),
    { numRuns: numRuns(300) },
  );
});

test('DNS over TCP: any chunking of a stream gives back the messages', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 700, size: 'max' }), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (messages, cuts) => {
        const stream = Uint8Array.from(messages.flatMap((m) => [...frameDnsTcp(m)]));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const d = new DnsTcpDeframer();
        const got: Uint8Array[] = [];
        let from = 0;
        for (const p of [...points, stream.length]) {
          got.push(...d.push(stream.subarray(from, p)));
          from = p;
        }
        assert.deepEqual(got, messages);
        assert.equal(d.buffered, 0);
      },
    ),
    { numRuns: numRuns(200) },
  );
});
