/**
 * IPv6 reassembly timeouts in the IPv6 input, on a virtual clock: the
 * ICMPv6 time exceeded, code 1 (RFC 8200 4.5, RFC 4443 3.3) when the first
 * fragment came and the datagram never completed, and nothing otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv6Demux } from '../../src/operators/ipv6.js';
import { parseIpv6 } from '../../src/protocols/address.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { Icmpv6Message, writeIcmpv6 } from '../../src/protocols/icmpv6.js';
import { Ipv6Packet, NextHeader, fragmentIpv6 } from '../../src/protocols/ipv6.js';
import { pattern, rig } from '../operators/guest-frames.js';
import { GATEWAY6, GATEWAY_MAC, GUEST6, GUEST_MAC, config6, frame6, icmpFrame6 } from './guest6.js';

const OUTSIDE = parseIpv6('2001:db8::1');

/** The IPv6 demux with no routes: what it emits is the input's own doing. */
function demuxRig() {
  return rig<Buffer, Buffer>((ctx) => ipv6Demux(ctx, new Map()), config6());
}

/** `whole` cut into fragments of at most `mtu` bytes, each in a frame of its own. */
function fragments(whole: Buffer, mtu = 1280, id = 9): Buffer[] {
  const packet = Ipv6Packet.parse(whole, ETH_HEADER_LENGTH);
  return fragmentIpv6(packet, mtu, id).map((f) =>
    Buffer.concat([whole.subarray(0, ETH_HEADER_LENGTH), f]),
  );
}

function udpLike(n: number, dst = OUTSIDE): Buffer {
  return frame6(NextHeader.UDP, pattern(n), { dst });
}

test('a first fragment alone times out: one time exceeded (3/1) at 60 s, quoting it to 1280 bytes', () => {
  const r = demuxRig();
  const frames = fragments(udpLike(3000));
  assert.equal(frames[0]!.length, ETH_HEADER_LENGTH + 1280);
  r.input.next(frames[0]!);
  r.advanceTo(59_999);
  assert.equal(r.out.length, 0, 'nothing before the deadline');
  r.advanceTo(60_000);
  assert.equal(r.out.length, 1);

  const frame = r.out[0]!;
  assert.deepEqual(frame.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.deepEqual(frame.subarray(6, 12), Buffer.from(GATEWAY_MAC));
  const ip = Ipv6Packet.parse(frame, ETH_HEADER_LENGTH);
  assert.deepEqual(Uint8Array.from(ip.src), GATEWAY6);
  assert.deepEqual(Uint8Array.from(ip.dst), GUEST6);
  assert.equal(ip.totalLength, 1280, 'no larger than the minimum MTU');
  const icmp = Icmpv6Message.ofPacket(ip);
  assert.equal(icmp.type, 3);
  assert.equal(icmp.code, 1);
  assert.equal(icmp.restOfHeader, 0);
  // RFC 4443 3.3: as much of the invoking packet as fits.
  const quote = 1280 - 40 - 8;
  assert.deepEqual(
    Buffer.from(icmp.body),
    frames[0]!.subarray(ETH_HEADER_LENGTH, ETH_HEADER_LENGTH + quote),
  );
  assert.equal(r.counter('ipv6.fragment.timeout'), 1);
  assert.equal(r.counter('ipv6.fragment.time-exceeded-sent'), 1);
  r.advanceTo(300_000);
  assert.equal(r.out.length, 1, 'exactly one');
});

test('a small first fragment is quoted whole', () => {
  const r = demuxRig();
  const frames = fragments(udpLike(300), 200);
  r.input.next(frames[0]!);
  r.advanceTo(60_000);
  const icmp = Icmpv6Message.ofPacket(Ipv6Packet.parse(r.out[0]!, ETH_HEADER_LENGTH));
  assert.deepEqual(Buffer.from(icmp.body), frames[0]!.subarray(ETH_HEADER_LENGTH));
});

test('later fragments alone time out: counted, and no ICMPv6', () => {
  const r = demuxRig();
  const frames = fragments(udpLike(3000));
  r.input.next(frames[1]!);
  r.input.next(frames[2]!);
  r.advanceTo(60_000);
  assert.equal(r.counter('ipv6.fragment.timeout'), 2);
  assert.equal(r.counter('ipv6.fragment.time-exceeded-sent'), 0);
  assert.deepEqual(r.out, []);
});

test('a completed datagram sends no time exceeded, then or later', () => {
  const r = demuxRig();
  const frames = fragments(udpLike(3000));
  r.input.next(frames[0]!);
  r.advanceTo(50_000);
  for (const f of frames.slice(1).reverse()) r.input.next(f);
  r.advanceTo(300_000);
  assert.equal(r.counter('ipv6.fragment.reassembled'), 1);
  assert.equal(r.counter('ipv6.unhandled-protocol'), 1, 'the datagram went on, to no route');
  assert.equal(r.counter('ipv6.fragment.timeout'), 0);
  assert.deepEqual(r.out, []);
});

test('no time exceeded where RFC 4443 2.4 (e) forbids one: multicast, ICMPv6 errors', () => {
  const r = demuxRig();
  const unreachable = icmpFrame6(3000, (buf, src, dst) =>
    writeIcmpv6(buf, 0, 1, 4, 0, pattern(2992), src, dst),
  );
  const echo = icmpFrame6(3000, (buf, src, dst) =>
    writeIcmpv6(buf, 0, 128, 0, 0x10001, pattern(2992), src, dst),
  );
  r.input.next(fragments(udpLike(3000, parseIpv6('ff0e::1')), 1280, 1)[0]!);
  r.input.next(fragments(unreachable, 1280, 2)[0]!);
  r.advanceTo(60_000);
  assert.equal(r.counter('ipv6.fragment.timeout'), 2);
  assert.equal(r.counter('ipv6.fragment.time-exceeded-sent'), 0);
  assert.deepEqual(r.out, []);

  // An echo request is no error: its first fragment is answered.
  r.input.next(fragments(echo, 1280, 3)[0]!);
  r.advanceTo(120_000);
  assert.equal(r.out.length, 1);
  assert.equal(Icmpv6Message.ofPacket(Ipv6Packet.parse(r.out[0]!, ETH_HEADER_LENGTH)).type, 3);
});
