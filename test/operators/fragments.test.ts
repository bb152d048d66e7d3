/**
 * The fragment operators: reassembly in the IPv4 input on a virtual clock
 * (timeouts, bounded memory, counted drops) and fragmentation of frames to
 * the guest larger than the MTU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkConfig } from '../../src/config.js';
import { ipv4Fragmenter, ipv4Reassembly } from '../../src/operators/fragments.js';
import { ipv4Input } from '../../src/operators/ipv4.js';
import { checksum } from '../../src/protocols/checksum.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { fragmentIpv4 } from '../../src/protocols/fragments.js';
import type { Ipv4Packet } from '../../src/protocols/ipv4.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { framesOf, ipOf, pattern, rig, udpFrame, GUEST_IP, GATEWAY } from './guest-frames.js';

/** A guest datagram of `n` payload bytes, cut into frames of at most `mtu`. */
function fragmented(n: number, mtu: number, id = 0x1234): { whole: Buffer; frames: Buffer[] } {
  const whole = udpFrame(pattern(n), { id });
  return { whole, frames: framesOf(fragmentIpv4(ipOf(whole), mtu)) };
}

/** The fragment `frame` with its last `cut` bytes gone, header fixed up. */
function shortened(frame: Buffer, cut: number): Buffer {
  const f = Buffer.from(frame.subarray(0, frame.length - cut));
  f.writeUInt16BE(f.length - ETH_HEADER_LENGTH, ETH_HEADER_LENGTH + 2);
  f.writeUInt16BE(0, ETH_HEADER_LENGTH + 10);
  f.writeUInt16BE(checksum(f, ETH_HEADER_LENGTH, 20), ETH_HEADER_LENGTH + 10);
  return f;
}

function samePacket(got: Ipv4Packet, whole: Buffer): void {
  assert.equal(got.isFragment, false);
  assert.deepEqual(Buffer.from(got.payload), whole.subarray(ETH_HEADER_LENGTH + 20));
  const udp = UdpDatagram.parseV4(got.buf, got.payloadOffset, got.payloadLength, got.src, got.dst);
  assert.equal(udp.payloadLength, whole.length - ETH_HEADER_LENGTH - 28);
}

test('whole packets pass; fragments in any order come out as one datagram', () => {
  const r = rig(ipv4Input);
  const small = udpFrame(pattern(10));
  r.input.next(small);
  const { whole, frames } = fragmented(60 * 1024, 1500);
  assert.equal(frames.length, 42);
  const order = frames.map((_, i) => (i * 17) % frames.length);
  for (const i of order) r.input.next(frames[i]!);
  assert.equal(r.out.length, 2);
  assert.equal(r.out[0]!.buf, small, 'a whole packet is the same view, not a copy');
  samePacket(r.out[1]!, whole);
  assert.deepEqual(r.out[1]!.buf.subarray(6, 12), frames[0]!.subarray(6, 12), 'guest MAC kept');
  assert.equal(r.counter('ipv4.fragment.reassembled'), 1);
  assert.equal(r.scheduler.actions.length, 0, 'no timer left once nothing is held');
});

test('an incomplete datagram times out after 30 s on the scheduler, counted per fragment', () => {
  const r = rig(ipv4Input);
  const { frames } = fragmented(4000, 1500);
  r.input.next(frames[0]!);
  r.advanceTo(10_000);
  r.input.next(frames[1]!);
  assert.equal(r.scheduler.actions.length, 1, 'one timer for the next deadline');
  r.advanceTo(29_999);
  assert.equal(r.counter('ipv4.fragment.timeout'), 0);
  r.advanceTo(30_000);
  assert.equal(r.counter('ipv4.fragment.timeout'), 2);
  assert.equal(r.scheduler.actions.length, 0);
  r.input.next(frames[2]!);
  assert.equal(r.out.length, 0, 'the last piece alone makes nothing');
});

test('the timer follows the oldest datagram as datagrams come and go', () => {
  const r = rig(ipv4Input);
  const a = fragmented(3000, 1500, 1).frames;
  const b = fragmented(3000, 1500, 2).frames;
  r.input.next(a[0]!);
  r.advanceTo(5_000);
  r.input.next(b[0]!);
  r.input.next(a[1]!);
  r.input.next(a[2]!);
  assert.equal(r.out.length, 1, 'a completes');
  r.advanceTo(30_000);
  assert.equal(r.counter('ipv4.fragment.timeout'), 0, 'b has until 35 s');
  r.advanceTo(35_000);
  assert.equal(r.counter('ipv4.fragment.timeout'), 1);
});

test('duplicates, overlaps and bad lengths are dropped and counted by reason', () => {
  const r = rig(ipv4Input);
  const { whole, frames } = fragmented(3000, 1500);
  r.input.next(frames[0]!);
  r.input.next(frames[0]!);
  assert.equal(r.counter('ipv4.fragment.duplicate'), 1);
  r.input.next(shortened(frames[1]!, 3));
  assert.equal(r.counter('ipv4.fragment.bad-length'), 1, 'a middle piece not a multiple of 8');
  r.input.next(frames[1]!);
  r.input.next(frames[2]!);
  samePacket(r.out[0]!, whole);
  const o = fragmented(3000, 1500, 9).frames;
  r.input.next(o[1]!);
  const overlapping = fragmented(3000, 1000, 9).frames;
  r.input.next(overlapping[1]!);
  assert.equal(r.counter('ipv4.fragment.overlap'), 2, 'both held and offered are dropped');
});

test('memory is bounded: the oldest datagram is evicted past maxBytes', () => {
  const r = rig((ctx) => ipv4Reassembly(ctx, { maxBytes: 4000 }));
  const a = fragmented(3000, 1500, 1).frames.map(ipOf);
  const b = fragmented(3000, 1500, 2).frames.map(ipOf);
  r.input.next(a[0]!);
  r.input.next(a[1]!);
  r.input.next(b[0]!);
  assert.equal(r.counter('ipv4.fragment.evicted'), 2);
  r.input.next(b[1]!);
  r.input.next(b[2]!);
  assert.equal(r.out.length, 1, 'the newer datagram still completes');
});

test('frames to the guest above the MTU leave as fragments; the rest pass untouched', () => {
  const r = rig<Buffer, Buffer>(ipv4Fragmenter, networkConfig(undefined, 1500));
  const small = udpFrame(pattern(1472), { src: GATEWAY, dst: GUEST_IP });
  r.input.next(small);
  assert.equal(r.out[0], small);
  const big = udpFrame(pattern(65507), { src: GATEWAY, dst: GUEST_IP, id: 77 });
  r.input.next(big);
  const frags = r.out.slice(1);
  assert.equal(frags.length, 45);
  for (const f of frags) {
    assert.ok(f.length <= ETH_HEADER_LENGTH + 1500);
    assert.deepEqual(f.subarray(0, ETH_HEADER_LENGTH), big.subarray(0, ETH_HEADER_LENGTH));
  }
  assert.equal(r.counter('ipv4.fragment.sent'), 45);
  // The guest's side: reassembly gives back the datagram byte for byte.
  const back = rig(ipv4Input);
  for (const f of frags.reverse()) back.input.next(f);
  samePacket(back.out[0]!, big);
});

test('a frame with DF set passes as it is, whatever its size (TCP super-frames)', () => {
  const r = rig<Buffer, Buffer>(ipv4Fragmenter, networkConfig(undefined, 1500));
  const big = udpFrame(pattern(2000), { src: GATEWAY, dst: GUEST_IP, dontFragment: true });
  r.input.next(big);
  assert.deepEqual(r.out, [big]);
});
