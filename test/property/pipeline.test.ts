/**
 * The whole pipeline against arbitrary input: whatever frames arrive, the
 * stack never errors, never throws, counts or answers every frame exactly
 * once, and emits only well-formed frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { networkConfig } from '../../src/config.js';
import { stackContext } from '../../src/operators/context.js';
import { runStack } from '../../src/slirp.js';
import { Ipv4Packet } from '../../src/protocols/ipv4.js';
import { ArpPacket } from '../../src/protocols/arp.js';
import { etherType, EtherType } from '../../src/protocols/ethernet.js';
import { numRuns } from './runs.js';

const ARP_REQUEST = Buffer.from(
  'ffffffffffff020000000001080600010800060400010200000000010a0002640000000000000a000202',
  'hex',
);
const ECHO_REQUEST = Buffer.from(
  '52550a000202020000000001080045000054' +
    '81e940004001a05a0a0002640a000202' +
    '0800b8f1000100016b0b5f6700000000a8c60d0000000000' +
    '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
  'hex',
);

/** Frames: arbitrary bytes, or a valid frame with bytes overwritten or cut. */
const frameArb = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc
    .tuple(
      fc.constantFrom(ARP_REQUEST, ECHO_REQUEST),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.option(fc.nat()),
    )
    .map(([base, edits, cut]) => {
      const f = Buffer.from(base);
      for (const [at, value] of edits) f[at % f.length] = value;
      return cut === null ? f : f.subarray(0, cut % (f.length + 1));
    }),
);

function sumCounters(snapshot: Record<string, number>): number {
  return Object.values(snapshot).reduce((a, b) => a + b, 0);
}

test('every frame is answered or counted exactly once, and the stack never fails', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 30 }), (frames) => {
      const ctx = stackContext(networkConfig());
      const input = new Subject<Buffer>();
      const out: Buffer[] = [];
      const sub = runStack(input, (f) => out.push(f), ctx);
      for (const f of frames) input.next(f);
      assert.equal(sub.closed, false, 'the pipeline is still running');
      input.complete();
      const counters = ctx.counters.snapshot();
      for (const name of Object.keys(counters)) assert.doesNotMatch(name, /internal-error/);
      assert.equal(sumCounters(counters), frames.length, JSON.stringify(counters));
      for (const reply of out) {
        if (etherType(reply) === EtherType.ARP) ArpPacket.parse(reply, 14);
        else Ipv4Packet.parse(reply, 14);
      }
    }),
    { numRuns: numRuns(300) },
  );
});

test('a valid ARP request and echo request are answered', () => {
  const ctx = stackContext(networkConfig());
  const input = new Subject<Buffer>();
  const out: Buffer[] = [];
  runStack(input, (f) => out.push(f), ctx);
  input.next(ARP_REQUEST);
  input.next(ECHO_REQUEST);
  assert.equal(out.length, 2);
  assert.equal(
    out[0]!.toString('hex'),
    '020000000001' +
      '52550a000202' +
      '0806' +
      '0001080006040002' +
      '52550a000202' +
      '0a000202' +
      '020000000001' +
      '0a000264',
  );
  const reply = Ipv4Packet.parse(out[1]!, 14);
  assert.equal(reply.src, 0x0a000202);
  assert.equal(reply.dst, 0x0a000264);
  assert.equal(out[1]![34], 0, 'ICMP type echo reply');
  assert.deepEqual(out[1]!.subarray(38), ECHO_REQUEST.subarray(38), 'identifier, sequence, data');
  assert.deepEqual(ctx.counters.snapshot(), { 'arp.replied': 1, 'icmp.echo.replied': 1 });
});

test('--disable-dns: network+3 answers neither ARP nor ping', () => {
  const ctx = stackContext(networkConfig(undefined, undefined, { disableDns: true }));
  const input = new Subject<Buffer>();
  const out: Buffer[] = [];
  runStack(input, (f) => out.push(f), ctx);
  const arpForDns = Buffer.from(ARP_REQUEST);
  arpForDns[41] = 3;
  input.next(arpForDns);
  assert.equal(out.length, 0);
  assert.equal(ctx.counters.get('arp.not-for-us'), 1);
});
