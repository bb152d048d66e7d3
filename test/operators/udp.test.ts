/**
 * The UDP NAT against a fake host: one socket per guest flow, replies from
 * the address the guest wrote to, host errors as ICMP errors, idle expiry
 * on the virtual clock, the flow cap, and what is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkConfig } from '../../src/config.js';
import { udpInput, udpNat, type UdpNatOptions } from '../../src/operators/udp.js';
import { ipv4Input } from '../../src/operators/ipv4.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { Icmpv4Message } from '../../src/protocols/icmpv4.js';
import { IpProtocol } from '../../src/protocols/ipv4.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { pipe } from 'rxjs';
import { fakeHost } from './fake-udp.js';
import {
  GATEWAY,
  GATEWAY_MAC,
  GUEST_IP,
  GUEST_MAC,
  ipOf,
  pattern,
  rig,
  udpFrame,
} from './guest-frames.js';

function natRig(options: UdpNatOptions = {}, flags = {}) {
  const host = fakeHost();
  const r = rig<Buffer, Buffer>(
    (ctx) =>
      pipe(ipv4Input(ctx), udpInput(ctx, [], udpNat(ctx, { openSocket: host.open, ...options }))),
    networkConfig(undefined, 1500, flags),
  );
  return { ...r, host };
}

/** The UDP datagram inside a frame to the guest, checksum verified. */
function udpOf(frame: Buffer) {
  const ip = ipOf(frame);
  assert.equal(ip.protocol, IpProtocol.UDP);
  return {
    ip,
    udp: UdpDatagram.parseV4(frame, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst),
  };
}

test('a guest flow gets its own host socket; replies come from where the guest wrote', () => {
  const r = natRig();
  r.input.next(udpFrame(Buffer.from('ping'), { dst: GATEWAY, srcPort: 40000, dstPort: 7 }));
  assert.equal(r.host.sockets.length, 1);
  const s = r.host.sockets[0]!;
  assert.deepEqual(s.target, { address: '127.0.0.1', port: 7, family: 4 });
  assert.deepEqual(s.sent, [Buffer.from('ping')]);

  s.reply(Buffer.from('pong'));
  assert.equal(r.out.length, 1);
  const frame = r.out[0]!;
  assert.deepEqual(frame.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.deepEqual(frame.subarray(6, 12), Buffer.from(GATEWAY_MAC));
  const { ip, udp } = udpOf(frame);
  assert.equal(ip.src, GATEWAY);
  assert.equal(ip.dst, GUEST_IP);
  assert.equal(ip.dontFragment, false);
  assert.equal(udp.srcPort, 7);
  assert.equal(udp.dstPort, 40000);
  assert.equal(Buffer.from(udp.payload).toString(), 'pong');

  r.input.next(udpFrame(Buffer.from('again'), { dst: GATEWAY, srcPort: 40000, dstPort: 7 }));
  assert.equal(r.host.sockets.length, 1, 'same 4-tuple, same socket');
  r.input.next(udpFrame(Buffer.from('other'), { dst: GATEWAY, srcPort: 40001, dstPort: 7 }));
  r.input.next(udpFrame(Buffer.from('far'), { dst: 0xcb007101, srcPort: 40000, dstPort: 9 }));
  assert.equal(r.host.sockets.length, 3);
  assert.equal(r.host.sockets[2]!.target.address, '203.0.113.1', 'others at their own address');
  r.host.sockets[2]!.reply(Buffer.from('x'));
  assert.equal(udpOf(r.out[1]!).ip.src, 0xcb007101);
  assert.equal(r.counter('udp.nat.flow-opened'), 3);
});

test('a 65507-byte datagram goes to the host whole, and a reply that large comes back', () => {
  const r = natRig();
  const big = pattern(65507);
  r.input.next(udpFrame(big, { dst: GATEWAY, dstPort: 9000 }));
  assert.deepEqual(r.host.sockets[0]!.sent, [big]);
  r.host.sockets[0]!.reply(big);
  const { udp } = udpOf(r.out[0]!);
  assert.deepEqual(Buffer.from(udp.payload), big);
});

test('ECONNREFUSED on the host socket reaches the guest as ICMP port unreachable', () => {
  const r = natRig();
  const sent = udpFrame(Buffer.from('hello?'), { dst: GATEWAY, srcPort: 41000, dstPort: 9 });
  r.input.next(sent);
  r.host.sockets[0]!.fail('ECONNREFUSED');
  assert.equal(r.out.length, 1);
  const ip = ipOf(r.out[0]!);
  assert.equal(ip.protocol, IpProtocol.ICMP);
  assert.equal(ip.src, GATEWAY, 'from the address the guest wrote to');
  assert.equal(ip.dst, GUEST_IP);
  const icmp = Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
  assert.equal(icmp.type, 3);
  assert.equal(icmp.code, 3);
  assert.deepEqual(
    Buffer.from(icmp.body),
    sent.subarray(ETH_HEADER_LENGTH, ETH_HEADER_LENGTH + 28),
    'quotes the guest header and 8 bytes',
  );
  assert.equal(r.counter('udp.nat.host-error.ECONNREFUSED'), 1);

  r.host.sockets[0]!.fail('ENETUNREACH', 'send');
  const net = Icmpv4Message.parse(r.out[1]!, ETH_HEADER_LENGTH + 20);
  assert.equal(net.code, 0, 'net unreachable');
  r.host.sockets[0]!.fail('EMSGSIZE', 'send');
  assert.equal(r.out.length, 2, 'other errors are only counted');
  assert.equal(r.counter('udp.nat.host-error.EMSGSIZE'), 1);
});

test('--disable-host-loopback: the gateway is net unreachable and no socket opens', () => {
  const r = natRig({}, { disableHostLoopback: true });
  r.input.next(udpFrame(Buffer.from('x'), { dst: GATEWAY, dstPort: 53 }));
  assert.equal(r.host.sockets.length, 0);
  const icmp = Icmpv4Message.parse(r.out[0]!, ETH_HEADER_LENGTH + 20);
  assert.equal(icmp.type, 3);
  assert.equal(icmp.code, 0);
  assert.equal(r.counter('udp.nat.host-loopback-disabled'), 1);
});

test('broadcast, multicast, loopback and port 0 are dropped without a word', () => {
  const r = natRig();
  for (const dst of [0xffffffff, 0x0a0002ff, 0xe00000fb, 0x7f000001]) {
    r.input.next(udpFrame(Buffer.from('x'), { dst, dstPort: 5353 }));
  }
  assert.equal(r.host.sockets.length, 0);
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('udp.nat.martian'), 4);
  r.input.next(udpFrame(Buffer.from('x'), { dst: GATEWAY, dstPort: 0 }));
  assert.equal(r.counter('udp.nat.port-zero'), 1);
  assert.equal(r.host.sockets.length, 0);
});

test('idle flows expire on the scheduler; traffic either way keeps a flow alive', () => {
  const r = natRig({ idleTimeoutMs: 60_000 });
  r.input.next(udpFrame(Buffer.from('a'), { dstPort: 1, srcPort: 1 }));
  r.advanceTo(30_000);
  r.input.next(udpFrame(Buffer.from('b'), { dstPort: 2, srcPort: 2 }));
  r.advanceTo(50_000);
  r.host.sockets[0]!.reply(Buffer.from('keep'));
  r.advanceTo(90_000);
  assert.equal(r.host.sockets[1]!.closed, true, 'flow 2: idle since 30 s');
  assert.equal(r.host.sockets[0]!.closed, false, 'flow 1: heard from the host at 50 s');
  r.advanceTo(110_000);
  assert.equal(r.host.sockets[0]!.closed, true);
  assert.equal(r.counter('udp.nat.flow-expired'), 2);
  assert.equal(r.scheduler.actions.length, 0, 'no timer once no flow is left');
  r.input.next(udpFrame(Buffer.from('c'), { dstPort: 1, srcPort: 1 }));
  assert.equal(r.host.sockets.length, 3, 'a new flow after expiry');
});

test('past maxFlows, new flows are dropped and counted; existing ones carry on', () => {
  const r = natRig({ maxFlows: 2 });
  for (const port of [1, 2, 3]) r.input.next(udpFrame(Buffer.from('x'), { srcPort: port }));
  assert.equal(r.host.sockets.length, 2);
  assert.equal(r.counter('udp.nat.flow-limit'), 1);
  r.input.next(udpFrame(Buffer.from('y'), { srcPort: 1 }));
  assert.equal(r.host.sockets[0]!.sent.length, 2);
});

test('a bad checksum is dropped before the NAT; a zero checksum is accepted', () => {
  const r = natRig();
  const bad = udpFrame(Buffer.from('x'));
  bad[bad.length - 1]! ^= 1;
  r.input.next(bad);
  assert.equal(r.counter('udp.bad-checksum'), 1);
  const none = udpFrame(Buffer.from('y'));
  none.writeUInt16BE(0, ETH_HEADER_LENGTH + 20 + 6);
  r.input.next(none);
  assert.equal(r.host.sockets.length, 1);
});

test('unsubscribing closes every host socket', () => {
  const host = fakeHost();
  const r = rig<Buffer, Buffer>((ctx) =>
    pipe(ipv4Input(ctx), udpInput(ctx, [], udpNat(ctx, { openSocket: host.open }))),
  );
  r.input.next(udpFrame(Buffer.from('x')));
  r.input.complete();
  assert.equal(host.sockets[0]!.closed, true);
});
