/**
 * The TCP NAT glue with a fake host on a virtual clock: the order of the
 * handshake (host connect first), refusal and unreachability, data and
 * flow control both ways, half-close, resets, the flow limit, and the
 * freeing of every flow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkConfig } from '../../src/config.js';
import { tcpNat, type TcpNatHandle } from '../../src/operators/tcp.js';
import { pseudoSumV4 } from '../../src/protocols/checksum.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../../src/protocols/ethernet.js';
import { IpProtocol, writeIpv4Header, type Ipv4Packet } from '../../src/protocols/ipv4.js';
import { Icmpv4Message } from '../../src/protocols/icmpv4.js';
import {
  TcpControl,
  TcpSegment,
  encodeTcpSegment,
  encodedLength,
  type TcpRepr,
} from '../../src/protocols/tcp/segment.js';
import { seq, type Seq } from '../../src/protocols/tcp/seq.js';
import type { HostTcpConnector, HostTcpEvents, HostTcpTarget } from '../../src/streams/host-tcp.js';
import { GATEWAY, GATEWAY_MAC, GUEST_IP, GUEST_MAC, ipOf, pattern, rig } from './guest-frames.js';

const GUEST_PORT = 40000;
const EMPTY = new Uint8Array(0);

interface FakeTcp {
  target: HostTcpTarget;
  events: HostTcpEvents;
  written: Buffer[];
  pending: (() => void)[];
  ended: boolean;
  paused: boolean;
  reset: boolean;
  destroyed: boolean;
}

function fakeHost(autoAck = true): { connect: HostTcpConnector; sockets: FakeTcp[] } {
  const sockets: FakeTcp[] = [];
  const connect: HostTcpConnector = (target, events) => {
    const s: FakeTcp = {
      target,
      events,
      written: [],
      pending: [],
      ended: false,
      paused: false,
      reset: false,
      destroyed: false,
    };
    sockets.push(s);
    return {
      write: (bytes, written) => {
        s.written.push(Buffer.from(bytes));
        if (autoAck) written();
        else s.pending.push(written);
        return false; // copied
      },
      end: () => void (s.ended = true),
      pause: () => void (s.paused = true),
      resume: () => void (s.paused = false),
      reset: () => void (s.reset = true),
      destroy: () => void (s.destroyed = true),
    };
  };
  return { connect, sockets };
}

function guestSegment(r: Partial<TcpRepr> & { seq: Seq }, dst = GATEWAY, port = 80): Ipv4Packet {
  const repr: TcpRepr = {
    srcPort: GUEST_PORT,
    dstPort: port,
    ack: undefined,
    control: TcpControl.None,
    push: false,
    window: 65535,
    payload: EMPTY,
    ...r,
  };
  const length = encodedLength(repr);
  const frame = Buffer.alloc(ETH_HEADER_LENGTH + 20 + length);
  writeEthernet(frame, 0, GATEWAY_MAC, GUEST_MAC, EtherType.IPv4);
  writeIpv4Header(frame, ETH_HEADER_LENGTH, {
    src: GUEST_IP,
    dst,
    protocol: IpProtocol.TCP,
    payloadLength: length,
  });
  encodeTcpSegment(frame, 34, repr, pseudoSumV4(GUEST_IP, dst, IpProtocol.TCP, length));
  return ipOf(frame);
}

/** Parses a frame to the guest as TCP, checking its checksum. */
function tcpOf(frame: Buffer): TcpSegment {
  const ip = ipOf(frame);
  assert.equal(ip.protocol, IpProtocol.TCP);
  const sum = pseudoSumV4(ip.src, ip.dst, IpProtocol.TCP, ip.payloadLength);
  return TcpSegment.parse(frame, ip.payloadOffset, ip.payloadLength, sum);
}

function setup(
  options: {
    maxFlows?: number;
    autoAck?: boolean;
    loopback?: boolean;
    rcvBuf?: number;
    connectTimeoutMs?: number;
    outbound?: string;
    outbound6?: string;
    dnsUpstream?: () => { address: string; port: number; family: 4 | 6 } | undefined;
  } = {},
) {
  const host = fakeHost(options.autoAck ?? true);
  let handle: TcpNatHandle | undefined;
  const config = {
    ...networkConfig(undefined, undefined, { disableHostLoopback: options.loopback === false }),
    ...((options.outbound ?? options.outbound6) !== undefined && {
      outbound: { v4: options.outbound, v6: options.outbound6 },
    }),
  };
  const r = rig<Ipv4Packet, Buffer>(
    (ctx) =>
      tcpNat(
        ctx,
        {
          connector: host.connect,
          maxFlows: options.maxFlows,
          endpoint: { receiveBufferSize: options.rcvBuf },
          dnsUpstream: options.dnsUpstream,
          connectTimeoutMs: options.connectTimeoutMs,
        },
        (h) => (handle = h),
      ),
    config,
  );
  return { ...r, host, flows: () => handle!.flows, handle: () => handle! };
}

/** SYN from the guest, host accepts, SYN-ACK, ACK: an established flow. */
function establish(t: ReturnType<typeof setup>, iss = 1000) {
  t.input.next(guestSegment({ seq: seq(iss), control: TcpControl.Syn, mss: 1460 }));
  const socket = t.host.sockets.at(-1)!;
  socket.events.connected();
  const synAck = tcpOf(t.out.at(-1)!);
  const ourIss = synAck.seq;
  t.input.next(guestSegment({ seq: seq(iss + 1), ack: seq(ourIss + 1) }));
  return { socket, ourIss, guestNxt: iss + 1 };
}

test('the SYN-ACK waits for the host connect, which goes to 127.0.0.1', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn, mss: 1460 }));
  assert.equal(t.out.length, 0, 'nothing before the host accepts');
  assert.deepEqual(t.host.sockets[0]!.target, {
    host: '127.0.0.1',
    port: 80,
  });

  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn, mss: 1460 }));
  assert.equal(t.host.sockets.length, 1, 'a retransmitted SYN opens no second socket');
  assert.equal(t.out.length, 0);

  t.host.sockets[0]!.events.connected();
  const synAck = tcpOf(t.out[0]!);
  assert.equal(synAck.control, TcpControl.Syn);
  assert.equal(synAck.ack, 1001);
  assert.equal(ipOf(t.out[0]!).src, GATEWAY);
});

test('a refused host connect becomes RST|ACK and frees the flow', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }));
  t.host.sockets[0]!.events.error('ECONNREFUSED');
  const rst = tcpOf(t.out[0]!);
  assert.equal(rst.control, TcpControl.Rst);
  assert.equal(rst.ack, 1001);
  assert.equal(t.flows(), 0);
  assert.equal(t.counter('tcp.freed.refused'), 1);
});

test('an unreachable host becomes ICMP host unreachable quoting the SYN', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xc6336402));
  assert.equal(t.host.sockets[0]!.target.host, '198.51.100.2');
  t.host.sockets[0]!.events.error('EHOSTUNREACH');
  const ip = ipOf(t.out[0]!);
  assert.equal(ip.protocol, IpProtocol.ICMP);
  const icmp = Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
  assert.equal(icmp.type, 3);
  assert.equal(icmp.code, 1);
  assert.equal(t.flows(), 0);
});

/** The ICMP destination unreachable the guest got last, as [type, code]. */
function icmpOf(frame: Buffer): [number, number] {
  const ip = ipOf(frame);
  assert.equal(ip.protocol, IpProtocol.ICMP);
  const icmp = Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
  return [icmp.type, icmp.code];
}

test('no route to the network is ICMP net unreachable; a kernel timeout host unreachable', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xcb007107));
  t.host.sockets[0]!.events.error('ENETUNREACH');
  assert.deepEqual(icmpOf(t.out.at(-1)!), [3, 0]);
  assert.equal(t.host.sockets[0]!.destroyed, true);

  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xcb007108));
  t.host.sockets[1]!.events.error('ETIMEDOUT');
  assert.deepEqual(icmpOf(t.out.at(-1)!), [3, 1]);
  assert.equal(t.flows(), 0);
  assert.equal(t.counter('tcp.freed.unreachable'), 2);
});

test('a host connect that hears nothing for 20 s becomes ICMP host unreachable', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xcb007107));
  t.advanceTo(19_999);
  assert.equal(t.out.length, 0, 'still waiting for the host');
  assert.equal(t.flows(), 1);

  t.advanceTo(20_000);
  assert.deepEqual(icmpOf(t.out[0]!), [3, 1]);
  assert.equal(t.out.length, 1);
  assert.equal(t.host.sockets[0]!.destroyed, true, 'the host connect is abandoned');
  assert.equal(t.flows(), 0);
  assert.equal(t.counter('tcp.host.connect-timeout'), 1);

  // A late answer from the abandoned socket changes nothing.
  t.host.sockets[0]!.events.connected();
  t.host.sockets[0]!.events.error('ETIMEDOUT');
  assert.equal(t.out.length, 1);
});

test('the connect timeout is set in the options, and spares a connect that succeeded', () => {
  const t = setup({ connectTimeoutMs: 3000 });
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xcb007107));
  t.advanceTo(3000);
  assert.deepEqual(icmpOf(t.out[0]!), [3, 1]);

  const { socket } = establish(t, 5000);
  t.advanceTo(10_000);
  assert.equal(t.flows(), 1);
  assert.equal(socket.destroyed, false);
  assert.equal(t.counter('tcp.host.connect-timeout'), 1);
});

test('with an outbound address the host socket connects from it', () => {
  const t = setup({ outbound: '198.51.100.9' });
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0xcb007107));
  assert.deepEqual(t.host.sockets[0]!.target, {
    host: '203.0.113.7',
    port: 80,
    localAddress: '198.51.100.9',
  });
});

test('--disable-host-loopback: the gateway is a net unreachable, no socket opened', () => {
  const t = setup({ loopback: false });
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }));
  assert.equal(t.host.sockets.length, 0);
  const ip = ipOf(t.out[0]!);
  const icmp = Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
  assert.deepEqual([icmp.type, icmp.code], [3, 0]);
});

test('data both ways, with the host paused while the send buffer is full', () => {
  const t = setup();
  const { socket, ourIss } = establish(t);
  const payload = pattern(3000);
  t.input.next(guestSegment({ seq: seq(1001), ack: seq(ourIss + 1), payload, push: true }));
  assert.deepEqual(Buffer.concat(socket.written), payload);

  t.out.length = 0;
  socket.events.data(pattern(5 * 1024 * 1024, 3));
  assert.equal(socket.paused, true, 'over the 4 MiB send buffer: paused');
  const first = tcpOf(t.out[0]!);
  assert.equal(first.seq, ourIss + 1);
  assert.deepEqual(Buffer.from(first.payload), pattern(5 * 1024 * 1024, 3).subarray(0, 1460));

  // The guest acknowledges everything sent so far, and opens its window.
  let acked = ourIss + 1;
  for (let round = 0; round < 2000 && socket.paused; round++) {
    const last = tcpOf(t.out.at(-1)!);
    acked = last.seq + last.payload.length;
    t.input.next(guestSegment({ seq: seq(1001 + 3000), ack: seq(acked), window: 65535 }));
  }
  assert.equal(socket.paused, false, 'resumed once ACKs freed room');
});

test('half-close: guest FIN ends the host write side, host data still flows', () => {
  const t = setup();
  const { socket, ourIss } = establish(t);
  t.input.next(guestSegment({ seq: seq(1001), ack: seq(ourIss + 1), control: TcpControl.Fin }));
  assert.equal(socket.ended, true);
  t.out.length = 0;
  socket.events.data(Buffer.from('reply after your FIN'));
  const seg = tcpOf(t.out.at(-1)!);
  assert.equal(Buffer.from(seg.payload).toString(), 'reply after your FIN');
  assert.equal(seg.ack, 1002, 'our ACK covers the guest FIN');

  socket.events.end();
  const fin = tcpOf(t.out.at(-1)!);
  assert.equal(fin.control, TcpControl.Fin);
  t.input.next(guestSegment({ seq: seq(1002), ack: seq(fin.seq + 1) }));
  assert.equal(t.flows(), 0, 'both FINs acknowledged: freed');
  assert.equal(t.counter('tcp.freed.closed'), 1);
});

test('a new SYN to a flow in TIME-WAIT opens a new flow at once', () => {
  const t = setup();
  const { socket, ourIss } = establish(t);
  // The host closes first, so our endpoint is the one left in TIME-WAIT.
  socket.events.end();
  const fin = tcpOf(t.out.at(-1)!);
  assert.equal(fin.control, TcpControl.Fin);
  t.input.next(guestSegment({ seq: seq(1001), ack: seq(fin.seq + 1), control: TcpControl.Fin }));
  assert.equal(socket.ended, true);
  assert.equal(t.flows(), 1, 'TIME-WAIT keeps the flow');

  // The guest reuses the 4-tuple with a higher ISN (RFC 9293 3.10.7.4).
  t.out.length = 0;
  t.input.next(guestSegment({ seq: seq(900_000), control: TcpControl.Syn, mss: 1460 }));
  assert.equal(t.counter('tcp.freed.reopen'), 1);
  assert.equal(t.host.sockets.length, 2, 'the reopening SYN made a new host connect');
  assert.equal(t.flows(), 1, 'and a new flow holds it');
  assert.equal(t.out.length, 0, 'no SYN-ACK before the host accepts');

  t.host.sockets[1]!.events.connected();
  const synAck = tcpOf(t.out.at(-1)!);
  assert.equal(synAck.control, TcpControl.Syn);
  assert.equal(synAck.ack, 900_001);
  assert.notEqual(synAck.seq, ourIss, 'a new incarnation');

  // The old host socket, ended both ways, finishes its writes and closes
  // by itself: it is not cut short, and its late close leaves the new flow alone.
  assert.equal(socket.reset || socket.destroyed, false);
  socket.events.closed();
  assert.equal(t.flows(), 1);
  t.input.next(guestSegment({ seq: seq(900_001), ack: seq(synAck.seq + 1) }));
  assert.equal(t.counter('tcp.established'), 2);
});

test('a guest RST resets the host socket; a host error resets the guest', () => {
  const t = setup();
  const a = establish(t);
  t.input.next(guestSegment({ seq: seq(1001), control: TcpControl.Rst }));
  assert.equal(a.socket.reset, true);
  assert.equal(t.flows(), 0);

  const b = establish(t, 5000);
  t.out.length = 0;
  b.socket.events.error('ECONNRESET');
  assert.equal(tcpOf(t.out[0]!).control, TcpControl.Rst);
  assert.equal(b.socket.destroyed, true);
  assert.equal(t.flows(), 0);
});

test('a segment for no flow gets a RST; past the flow limit a SYN gets one too', () => {
  const t = setup({ maxFlows: 1 });
  t.input.next(guestSegment({ seq: seq(1), ack: seq(77) }));
  const rst = tcpOf(t.out[0]!);
  assert.equal(rst.control, TcpControl.Rst);
  assert.equal(rst.seq, 77);

  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, GATEWAY, 80));
  t.input.next(guestSegment({ seq: seq(2000), control: TcpControl.Syn }, GATEWAY, 81));
  assert.equal(t.host.sockets.length, 1);
  assert.equal(tcpOf(t.out.at(-1)!).control, TcpControl.Rst);
  assert.equal(t.counter('tcp.flow-limit'), 1);
});

test('the guest window follows what the host socket has absorbed', () => {
  const t = setup({ autoAck: false, rcvBuf: 32768 });
  const { socket, ourIss } = establish(t);
  const chunk = pattern(1460);
  let s = 1001;
  for (let i = 0; i < 20; i++) {
    t.input.next(guestSegment({ seq: seq(s), ack: seq(ourIss + 1), payload: chunk }));
    s += chunk.length;
  }
  const before = tcpOf(t.out.at(-1)!).window;
  for (const done of socket.pending.splice(0)) done();
  t.advanceTo(1000);
  const after = tcpOf(t.out.at(-1)!).window;
  assert.ok(before < 4096, `window shrank while the host held the bytes: ${before}`);
  // A window update goes out once the window can reopen past half the
  // buffer (receiver-side silly window avoidance, RFC 1122 4.2.3.3).
  assert.ok(after >= 16384, `window reopened once the host took them: ${after}`);
});

test('an unacknowledged SYN-ACK is retransmitted on the virtual clock', () => {
  const t = setup();
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }));
  t.host.sockets[0]!.events.connected();
  assert.equal(t.out.length, 1);
  t.advanceTo(1500);
  assert.ok(t.out.length >= 2, 'retransmitted after the initial RTO');
  assert.equal(tcpOf(t.out[1]!).control, TcpControl.Syn);
});

test('a host that closes right after its reply still gets the whole reply to the guest', () => {
  const t = setup();
  const { socket, ourIss } = establish(t);
  t.input.next(guestSegment({ seq: seq(1001), ack: seq(ourIss + 1), control: TcpControl.Fin }));
  const reply = pattern(300_000, 5);
  t.out.length = 0;
  socket.events.data(reply);
  socket.events.end();
  socket.events.closed();
  assert.equal(t.flows(), 1, 'the flow outlives its host socket while it owes the guest data');

  const got: Buffer[] = [];
  let next = ourIss + 1;
  let fin = false;
  for (let round = 0; round < 1000 && !fin; round++) {
    for (const frame of t.out.splice(0)) {
      const seg = tcpOf(frame);
      assert.notEqual(seg.control, TcpControl.Rst);
      if (seg.seq === next && seg.payload.length > 0) {
        got.push(Buffer.from(seg.payload));
        next += seg.payload.length;
      }
      if (seg.control === TcpControl.Fin && seg.seq + seg.payload.length === next) fin = true;
    }
    t.input.next(guestSegment({ seq: seq(1002), ack: seq(fin ? next + 1 : next) }));
    t.advanceTo(t.scheduler.now() + 50);
  }
  assert.ok(fin, 'the FIN followed the data');
  assert.deepEqual(Buffer.concat(got), reply);
  assert.equal(t.flows(), 0);
  assert.equal(t.counter('tcp.freed.closed'), 1);
});

test('DNS over TCP to 10.0.2.3:53 goes to the upstream; other ports are reset', () => {
  const t = setup({ dnsUpstream: () => ({ address: '198.51.100.1', port: 5353, family: 4 }) });
  t.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0x0a000203, 53));
  assert.deepEqual(t.host.sockets[0]!.target, {
    host: '198.51.100.1',
    port: 5353,
  });
  t.input.next(guestSegment({ seq: seq(2000), control: TcpControl.Syn }, 0x0a000203, 80));
  assert.equal(t.host.sockets.length, 1);
  assert.equal(tcpOf(t.out.at(-1)!).control, TcpControl.Rst);

  const none = setup({ dnsUpstream: () => undefined });
  none.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0x0a000203, 53));
  assert.equal(none.host.sockets.length, 0);
  assert.equal(tcpOf(none.out[0]!).control, TcpControl.Rst);
});

test('DNS over TCP binds the outbound address of the upstream family, not the guest one', () => {
  const outbound = { outbound: '198.51.100.9', outbound6: '2001:db8::9' };
  const v6 = setup({
    ...outbound,
    dnsUpstream: () => ({ address: '2001:db8::35', port: 53, family: 6 }),
  });
  v6.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0x0a000203, 53));
  assert.deepEqual(v6.host.sockets[0]!.target, {
    host: '2001:db8::35',
    port: 53,
    localAddress: '2001:db8::9',
  });

  const v4 = setup({
    ...outbound,
    dnsUpstream: () => ({ address: '198.51.100.1', port: 53, family: 4 }),
  });
  v4.input.next(guestSegment({ seq: seq(1000), control: TcpControl.Syn }, 0x0a000203, 53));
  assert.deepEqual(v4.host.sockets[0]!.target, {
    host: '198.51.100.1',
    port: 53,
    localAddress: '198.51.100.9',
  });
});

/** A forwarded host connection: the fake's accepted socket and what the NAT sent. */
function forwarded(t: ReturnType<typeof setup>) {
  const { connect, sockets } = t.host;
  const ok = t
    .handle()
    .forward({ guestAddr: GUEST_IP, guestMac: GUEST_MAC, guestPort: 80 }, (e) =>
      connect({ host: 'accepted', port: 0 }, e),
    );
  assert.ok(ok);
  const socket = sockets.at(-1)!;
  const syn = tcpOf(t.out.at(-1)!);
  return { socket, syn };
}

test('port forwarding: a SYN from the gateway to the guest, host read only once accepted', () => {
  const t = setup();
  const { connect } = t.host;
  let paused: boolean | undefined;
  t.handle().forward({ guestAddr: GUEST_IP, guestMac: GUEST_MAC, guestPort: 80 }, (e) => {
    const socket = connect({ host: 'accepted', port: 0 }, e);
    socket.pause(); // listenTcp hands sockets out paused
    paused = t.host.sockets.at(-1)!.paused;
    return socket;
  });
  const socket = t.host.sockets[0]!;
  const frame = t.out[0]!;
  const syn = tcpOf(frame);
  assert.equal(paused, true);
  assert.equal(syn.control, TcpControl.Syn);
  assert.equal(syn.hasAck, false);
  assert.equal(syn.dstPort, 80);
  assert.ok(syn.srcPort >= 49152, `source port ${syn.srcPort}`);
  assert.equal(ipOf(frame).src, GATEWAY);
  assert.equal(ipOf(frame).dst, GUEST_IP);
  assert.deepEqual(Uint8Array.from(frame.subarray(0, 6)), GUEST_MAC);
  assert.equal(socket.paused, true, 'nothing is read before the guest answers');

  // The guest accepts: SYN-ACK from its port 80 to our port.
  const seg = (r: Partial<TcpRepr> & { seq: Seq }) =>
    guestSegment({ srcPort: 80, ...r }, GATEWAY, syn.srcPort);
  t.input.next(seg({ seq: seq(5000), ack: seq(syn.seq + 1), control: TcpControl.Syn, mss: 1460 }));
  assert.equal(socket.paused, false, 'established: the host socket is read');
  assert.equal(t.counter('tcp.hostfwd.established'), 1);
  assert.equal(tcpOf(t.out.at(-1)!).ack, 5001);

  // Bytes both ways.
  socket.events.data(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
  const out = tcpOf(t.out.at(-1)!);
  assert.equal(Buffer.from(out.payload).toString(), 'GET / HTTP/1.0\r\n\r\n');
  t.input.next(seg({ seq: seq(5001), ack: seq(syn.seq + 1 + 18), payload: pattern(100) }));
  assert.deepEqual(Buffer.concat(socket.written), pattern(100));
  assert.equal(t.flows(), 1);
});

test('port forwarding: a guest that refuses gets the host connection reset', () => {
  const t = setup();
  const { socket, syn } = forwarded(t);
  t.input.next(
    guestSegment(
      { srcPort: 80, seq: seq(0), ack: seq(syn.seq + 1), control: TcpControl.Rst },
      GATEWAY,
      syn.srcPort,
    ),
  );
  assert.equal(socket.reset, true);
  assert.equal(t.flows(), 0);
  assert.equal(t.counter('tcp.freed.refused'), 1);
});

test('port forwarding: each connection gets its own gateway port', () => {
  const t = setup();
  const a = forwarded(t).syn.srcPort;
  const b = forwarded(t).syn.srcPort;
  assert.notEqual(a, b);
  assert.equal(t.flows(), 2);
});

/** Forwards a connection from `client` and returns the SYN's frame. */
function forwardFrom(t: ReturnType<typeof setup>, address: number, port: number): Buffer {
  const ok = t
    .handle()
    .forward(
      { guestAddr: GUEST_IP, guestMac: GUEST_MAC, guestPort: 80, client: { address, port } },
      (e) => t.host.connect({ host: 'accepted', port: 0 }, e),
    );
  assert.ok(ok);
  return t.out.at(-1)!;
}

test('port forwarding: the guest sees a routable client as itself, as with slirp4netns', () => {
  const t = setup();
  const client = 0xc6336407; // 198.51.100.7
  const frame = forwardFrom(t, client, 40000);
  const syn = tcpOf(frame);
  assert.equal(ipOf(frame).src, client);
  assert.equal(syn.srcPort, 40000);
  // Through the router: our MAC, as for anything off the guest's link.
  assert.deepEqual(Uint8Array.from(frame.subarray(6, 12)), GATEWAY_MAC);
  // The guest answers the client's address; that reaches this flow.
  t.input.next(
    guestSegment(
      { srcPort: 80, seq: seq(7000), ack: seq(syn.seq + 1), control: TcpControl.Syn, mss: 1460 },
      client,
      40000,
    ),
  );
  assert.equal(t.counter('tcp.hostfwd.established'), 1);
  assert.equal(t.host.sockets.length, 1, 'no NAT connection was opened for the answer');
  assert.equal(t.flows(), 1);
});

test('port forwarding: loopback and in-network clients are the gateway, with their port', () => {
  const t = setup();
  for (const [address, port] of [
    [0x7f000001, 41000], // 127.0.0.1: the guest could not answer it through us
    [0x0a000232, 42000], // 10.0.2.50: on the guest's own network, so on its link
  ] as const) {
    const frame = forwardFrom(t, address, port);
    assert.equal(ipOf(frame).src, GATEWAY);
    assert.equal(tcpOf(frame).srcPort, port);
  }
});

test('port forwarding: a client 4-tuple already in use falls back to a gateway port', () => {
  const t = setup();
  const client = 0xc6336407;
  forwardFrom(t, client, 40000);
  const again = forwardFrom(t, client, 40000);
  assert.equal(ipOf(again).src, GATEWAY);
  assert.ok(tcpOf(again).srcPort >= 49152);
  assert.equal(t.flows(), 2);
});
