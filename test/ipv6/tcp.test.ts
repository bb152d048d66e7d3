/**
 * TCP over IPv6 through the NAT with a fake host on a virtual clock: the
 * gateway prefix::2 reaches ::1, other addresses their own; segments to the
 * guest carry IPv6 checksums (or, offloaded, the TcpV6 GSO header with
 * csum_start 54); refusal, --disable-host-loopback, martians, DNS address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tcpNatV6 } from '../../src/operators/tcp.js';
import { ipv6ToString, parseIpv6, type Ipv6 } from '../../src/protocols/address.js';
import { pseudoSumV6 } from '../../src/protocols/checksum.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { Icmpv6Message } from '../../src/protocols/icmpv6.js';
import { NextHeader, type Ipv6Packet } from '../../src/protocols/ipv6.js';
import {
  TcpControl,
  TcpSegment,
  encodeTcpSegment,
  encodedLength,
  type TcpRepr,
} from '../../src/protocols/tcp/segment.js';
import { seq, type Seq } from '../../src/protocols/tcp/seq.js';
import { VNET_HDR_LENGTH } from '../../src/streams/offload.js';
import type { HostTcpConnector, HostTcpEvents, HostTcpTarget } from '../../src/streams/host-tcp.js';
import { pattern, rig } from '../operators/guest-frames.js';
import { DNS6, GATEWAY6, GUEST6, config6, frame6, ip6 } from './guest6.js';

const EMPTY = new Uint8Array(0);
const FAR = parseIpv6('2001:db8::7');

interface FakeSocket {
  target: HostTcpTarget;
  events: HostTcpEvents;
  written: Buffer[];
}

function setup(o: { loopback?: boolean; offload?: boolean } = {}) {
  const sockets: FakeSocket[] = [];
  const connect: HostTcpConnector = (target, events) => {
    const s: FakeSocket = { target, events, written: [] };
    sockets.push(s);
    return {
      write: (bytes, written) => {
        s.written.push(Buffer.from(bytes));
        written();
        return false;
      },
      end: () => {},
      pause: () => {},
      resume: () => {},
      reset: () => {},
      destroy: () => {},
    };
  };
  const config = config6(1500, { disableHostLoopback: o.loopback === false });
  const r = rig<Ipv6Packet, Buffer>((ctx) => tcpNatV6(ctx, { connector: connect }), config, {
    offload: o.offload ?? false,
  });
  return { ...r, sockets };
}

function segment(r: Partial<TcpRepr> & { seq: Seq }, dst: Ipv6 = GATEWAY6): Ipv6Packet {
  const repr: TcpRepr = {
    srcPort: 40000,
    dstPort: 8080,
    ack: undefined,
    control: TcpControl.None,
    push: false,
    window: 65535,
    payload: EMPTY,
    ...r,
  };
  const body = new Uint8Array(encodedLength(repr));
  encodeTcpSegment(body, 0, repr, pseudoSumV6(GUEST6, dst, NextHeader.TCP, body.length));
  return ip6(frame6(NextHeader.TCP, body, { dst }));
}

/** A frame to the guest as TCP, its checksum verified over the IPv6 pseudo header. */
function tcpOf(frame: Buffer): TcpSegment {
  const ip = ip6(frame);
  assert.equal(ip.upperProtocol, NextHeader.TCP);
  const sum = pseudoSumV6(ip.src, ip.dst, NextHeader.TCP, ip.upperLength);
  return TcpSegment.parse(frame, ip.upperOffset, ip.upperLength, sum);
}

test('a connection to [fd00::2] goes to [::1] on the host, and bytes flow both ways', () => {
  const t = setup();
  t.input.next(segment({ seq: seq(1000), control: TcpControl.Syn, mss: 1440 }));
  assert.equal(t.out.length, 0, 'the SYN-ACK waits for the host');
  assert.deepEqual(t.sockets[0]!.target, { host: '::1', port: 8080 });
  t.sockets[0]!.events.connected();
  const synAck = tcpOf(t.out[0]!);
  assert.equal(synAck.control, TcpControl.Syn);
  assert.equal(synAck.mss, 1440, 'MSS for IPv6: MTU - 60');
  assert.equal(ipv6ToString(ip6(t.out[0]!).src), 'fd00::2');
  assert.equal(ipv6ToString(ip6(t.out[0]!).dst), ipv6ToString(GUEST6));

  const ack = seq(synAck.seq + 1);
  t.input.next(segment({ seq: seq(1001), ack, payload: Buffer.from('GET /') }));
  assert.equal(Buffer.concat(t.sockets[0]!.written).toString(), 'GET /');
  t.sockets[0]!.events.data(Buffer.from('HTTP/1.1 200 OK'));
  const data = t.out.map(tcpOf).find((s) => s.payload.length > 0)!;
  assert.equal(Buffer.from(data.payload).toString(), 'HTTP/1.1 200 OK');
  assert.equal(t.counter('tcp.established'), 1);
});

test('other addresses are reached as addressed; the DNS address refuses TCP with a RST', () => {
  const t = setup();
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }, FAR));
  assert.deepEqual(t.sockets[0]!.target, { host: '2001:db8::7', port: 8080 });
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }, DNS6));
  assert.equal(t.sockets.length, 1);
  assert.equal(tcpOf(t.out.at(-1)!).control, TcpControl.Rst);
});

test('refused is a RST; unreachable host an ICMPv6 address unreachable, no route code 0', () => {
  const t = setup();
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }));
  t.sockets[0]!.events.error('ECONNREFUSED');
  assert.equal(tcpOf(t.out.at(-1)!).control, TcpControl.Rst);
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn, srcPort: 40001 }, FAR));
  t.sockets[1]!.events.error('EHOSTUNREACH');
  const ip = ip6(t.out.at(-1)!);
  const icmp = Icmpv6Message.ofPacket(ip);
  assert.deepEqual([icmp.type, icmp.code], [1, 3]);
  assert.equal(ipv6ToString(ip.src), 'fd00::2');

  // No route on the host: ICMPv6 no route (code 0), as Linux reports ENETUNREACH.
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn, srcPort: 40002 }, FAR));
  t.sockets[2]!.events.error('ENETUNREACH');
  const noRoute = Icmpv6Message.ofPacket(ip6(t.out.at(-1)!));
  assert.deepEqual([noRoute.type, noRoute.code], [1, 0]);
});

test('--disable-host-loopback and martians: ICMPv6 no route, no host socket', () => {
  const t = setup({ loopback: false });
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }));
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }, parseIpv6('fd00::99')));
  t.input.next(segment({ seq: seq(1), control: TcpControl.Syn }, parseIpv6('::ffff:127.0.0.1')));
  assert.equal(t.sockets.length, 0);
  assert.equal(t.out.length, 3);
  for (const f of t.out) {
    const icmp = Icmpv6Message.ofPacket(ip6(f));
    assert.deepEqual([icmp.type, icmp.code], [1, 0]);
  }
  assert.equal(t.counter('tcp.unreachable.host-loopback-disabled'), 1);
  assert.equal(t.counter('tcp.unreachable.martian'), 2);
});

test('a segment for no flow gets a RST; a bad checksum is counted', () => {
  const t = setup();
  t.input.next(segment({ seq: seq(5), ack: seq(9) }));
  assert.equal(tcpOf(t.out[0]!).control, TcpControl.Rst);
  const bad = segment({ seq: seq(1), control: TcpControl.Syn });
  (bad.buf as Buffer)[bad.upperOffset + 16]! ^= 0x55;
  t.input.next(bad);
  assert.equal(t.counter('tcp.bad-checksum'), 1);
});

test('offloaded: host data leaves as one TcpV6 super-frame with a partial checksum at 54', () => {
  const t = setup({ offload: true });
  t.input.next(segment({ seq: seq(1000), control: TcpControl.Syn, mss: 1440 }));
  t.sockets[0]!.events.connected();
  const synAckFrame = t.out[0]!;
  const synAck = TcpSegment.parse(
    synAckFrame,
    ETH_HEADER_LENGTH + 40,
    ip6(synAckFrame).upperLength,
  );
  t.input.next(segment({ seq: seq(1001), ack: seq(synAck.seq + 1) }));
  t.sockets[0]!.events.data(pattern(20_000));
  const big = t.out.find((f) => f.length > 10_000)!;
  assert.ok(big, 'one super-frame');
  const h = Buffer.from(big.buffer, big.byteOffset - VNET_HDR_LENGTH, VNET_HDR_LENGTH);
  assert.equal(h[0], 1, 'NEEDS_CSUM');
  assert.equal(h[1], 4, 'gso_type TcpV6');
  assert.equal(h.readUInt16LE(4), 1440, 'gso_size is the MSS');
  assert.equal(h.readUInt16LE(6), 54, 'csum_start');
  assert.equal(h.readUInt16LE(8), 16, 'csum_offset');
});
