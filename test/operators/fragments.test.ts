/**
 * The fragment operators: reassembly in the IPv4 input on a virtual clock
 * (timeouts, bounded memory, counted drops, the ICMP time exceeded of
 * RFC 792 / RFC 1122 3.3.2) and fragmentation of frames to the guest
 * larger than the MTU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkConfig } from '../../src/config.js';
import { ipv4Fragmenter, ipv4Reassembly } from '../../src/operators/fragments.js';
import { ipv4Demux, ipv4Input } from '../../src/operators/ipv4.js';
import { checksum } from '../../src/protocols/checksum.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../../src/protocols/ethernet.js';
import { fragmentIpv4 } from '../../src/protocols/fragments.js';
import { Icmpv4Message } from '../../src/protocols/icmpv4.js';
import { IpProtocol, writeIpv4Header, type Ipv4Packet } from '../../src/protocols/ipv4.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import {
  framesOf,
  ipOf,
  pattern,
  rig,
  udpFrame,
  GATEWAY_MAC,
  GUEST_IP,
  GUEST_MAC,
  GATEWAY,
} from './guest-frames.js';

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

/** The IPv4 demux with no routes: what it emits is the input's own doing. */
function demuxRig() {
  return rig<Buffer, Buffer>((ctx) => ipv4Demux(ctx, new Map()));
}

/** Reads a time exceeded frame to the guest: its IPv4 header and ICMP message. */
function timeExceeded(frame: Buffer): { ip: Ipv4Packet; icmp: Icmpv4Message } {
  assert.deepEqual(frame.subarray(0, 6), Buffer.from(GUEST_MAC), 'to the guest MAC');
  assert.deepEqual(frame.subarray(6, 12), Buffer.from(GATEWAY_MAC), 'from the gateway MAC');
  const ip = ipOf(frame);
  assert.equal(ip.protocol, IpProtocol.ICMP);
  assert.equal(ip.src, GATEWAY);
  assert.equal(ip.dst, GUEST_IP);
  return { ip, icmp: Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength) };
}

test('a first fragment alone times out: one time exceeded (11/1) at 30 s, quoting it', () => {
  const r = demuxRig();
  const { frames } = fragmented(4000, 1500, 0x4242);
  r.input.next(frames[0]!);
  r.advanceTo(29_999);
  assert.equal(r.out.length, 0, 'nothing before the deadline');
  r.advanceTo(30_000);
  assert.equal(r.out.length, 1);
  const { icmp } = timeExceeded(r.out[0]!);
  assert.equal(icmp.type, 11);
  assert.equal(icmp.code, 1);
  assert.equal(icmp.restOfHeader, 0);
  // RFC 792: the internet header plus the first 64 bits of the data.
  assert.deepEqual(
    Buffer.from(icmp.body),
    frames[0]!.subarray(ETH_HEADER_LENGTH, ETH_HEADER_LENGTH + 28),
  );
  assert.equal(r.counter('ipv4.fragment.timeout'), 1);
  assert.equal(r.counter('ipv4.fragment.time-exceeded-sent'), 1);
  r.advanceTo(120_000);
  assert.equal(r.out.length, 1, 'exactly one');
});

test('a later fragment alone times out: counted, and no ICMP', () => {
  const r = demuxRig();
  const { frames } = fragmented(4000, 1500);
  r.input.next(frames[1]!);
  r.input.next(frames[2]!);
  r.advanceTo(30_000);
  assert.equal(r.counter('ipv4.fragment.timeout'), 2);
  assert.equal(r.counter('ipv4.fragment.time-exceeded-sent'), 0);
  assert.deepEqual(r.out, []);
});

test('a completed datagram sends no time exceeded, then or later', () => {
  const r = demuxRig();
  const { frames } = fragmented(4000, 1500);
  r.input.next(frames[0]!);
  r.advanceTo(20_000);
  r.input.next(frames[2]!);
  r.input.next(frames[1]!);
  r.advanceTo(120_000);
  assert.equal(r.counter('ipv4.fragment.reassembled'), 1);
  assert.equal(r.counter('ipv4.unhandled-protocol'), 1, 'the datagram went on, to no route');
  assert.equal(r.counter('ipv4.fragment.timeout'), 0);
  assert.deepEqual(r.out, []);
});

test('a timeout a later fragment notices sends the time exceeded once, at that moment', () => {
  const r = demuxRig();
  r.input.next(fragmented(4000, 1500, 1).frames[0]!);
  r.advanceTo(29_999);
  r.scheduler.frame = 30_000; // the fragment comes before the timer runs
  r.input.next(fragmented(4000, 1500, 2).frames[1]!);
  assert.equal(r.out.length, 1);
  assert.equal(timeExceeded(r.out[0]!).icmp.type, 11);
  r.advanceTo(30_000);
  assert.equal(r.out.length, 1);
  assert.equal(r.counter('ipv4.fragment.time-exceeded-sent'), 1);
});

/** A guest datagram of `n` bytes carrying an ICMP message of `type`, in fragments. */
function icmpFragments(type: number, n: number): Buffer[] {
  const whole = Buffer.alloc(ETH_HEADER_LENGTH + 20 + n);
  writeEthernet(whole, 0, GATEWAY_MAC, GUEST_MAC, EtherType.IPv4);
  writeIpv4Header(whole, ETH_HEADER_LENGTH, {
    src: GUEST_IP,
    dst: 0xcb007101,
    protocol: IpProtocol.ICMP,
    payloadLength: n,
    identification: 77,
  });
  whole[ETH_HEADER_LENGTH + 20] = type;
  return framesOf(fragmentIpv4(ipOf(whole), 1500));
}

test('no time exceeded where RFC 1122 forbids an ICMP error: broadcasts, ICMP errors', () => {
  const r = demuxRig();
  const firsts = [
    framesOf(fragmentIpv4(ipOf(udpFrame(pattern(3000), { dst: 0xffffffff })), 1500))[0]!,
    framesOf(fragmentIpv4(ipOf(udpFrame(pattern(3000), { dst: 0x0a0002ff, id: 2 })), 1500))[0]!,
    framesOf(fragmentIpv4(ipOf(udpFrame(pattern(3000), { dst: 0xe0000001, id: 3 })), 1500))[0]!,
    icmpFragments(3, 3000)[0]!,
  ];
  for (const f of firsts) r.input.next(f);
  r.advanceTo(30_000);
  assert.equal(r.counter('ipv4.fragment.timeout'), 4);
  assert.equal(r.counter('ipv4.fragment.time-exceeded-sent'), 0);
  assert.deepEqual(r.out, []);

  // An echo request is no error: its first fragment is answered.
  r.input.next(icmpFragments(8, 3000)[0]!);
  r.advanceTo(60_000);
  assert.equal(r.out.length, 1);
  assert.equal(timeExceeded(r.out[0]!).icmp.body[20], 8, 'the quote holds the echo request');
});
