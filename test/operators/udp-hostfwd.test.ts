/**
 * UDP port forwards through the whole stack, with fake host sockets on a
 * virtual clock: each host peer gets its own gateway port, datagrams reach
 * the guest (fragmented over the MTU) and the guest's replies reach the
 * right peer ahead of the UDP NAT; peers expire after 60 idle seconds;
 * the guest's MAC is asked by ARP when unknown; gateway ports never clash
 * with TCP forwards or other UDP forwards toward the same guest port; and
 * removing a forward closes its socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkConfig } from '../../src/config.js';
import { HostForwarder, type TcpListen } from '../../src/operators/hostfwd.js';
import { slirpStack } from '../../src/operators/stack.js';
import { EtherType, etherType } from '../../src/protocols/ethernet.js';
import { Ipv4Reassembler } from '../../src/protocols/fragments.js';
import { IpProtocol, Ipv4Packet } from '../../src/protocols/ipv4.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import type { HostTcpAccept, HostTcpPeer } from '../../src/streams/host-tcp.js';
import type { HostUdpEvents, UdpBind, UdpPeer } from '../../src/streams/udp-socket.js';
import { fakeHost } from './fake-udp.js';
import { GATEWAY, GATEWAY_MAC, GUEST_IP, GUEST_MAC, ipOf, pattern, rig } from './guest-frames.js';
import { udpFrame as guestUdp } from './guest-frames.js';

interface FakeBound {
  port: number;
  events: HostUdpEvents;
  sent: { data: Buffer; to: UdpPeer }[];
  closed: boolean;
}

const PEER_A = { address: '127.0.0.1', port: 40001 };
const PEER_B = { address: '127.0.0.1', port: 40002 };

function setup(mtu = 1500) {
  const binds: FakeBound[] = [];
  const accepts: ((accept: HostTcpAccept, peer: HostTcpPeer) => void)[] = [];
  const bind: UdpBind = (_host, port, events) => {
    if (binds.some((b) => !b.closed && b.port === port)) {
      return Promise.reject(Object.assign(new Error('in use'), { code: 'EADDRINUSE' }));
    }
    const b: FakeBound = { port, events, sent: [], closed: false };
    binds.push(b);
    return Promise.resolve({
      send: (data, to) => void b.sent.push({ data: Buffer.from(data), to }),
      close: () => void (b.closed = true),
    });
  };
  const listen: TcpListen = (_host, _port, onAccept) => {
    accepts.push(onAccept);
    return Promise.resolve({ close: () => {} });
  };
  const nat = fakeHost();
  let forwarder: HostForwarder | undefined;
  const r = rig<Buffer, Buffer>(
    (ctx) => {
      forwarder = new HostForwarder(ctx, listen, bind);
      return slirpStack(ctx, {
        hostfwd: forwarder,
        udp: { openSocket: nat.open },
        dns: { upstream: '192.0.2.53', openSocket: fakeHost().open },
      });
    },
    networkConfig(undefined, mtu),
  );
  const fwd = forwarder!;
  const add = (hostPort: number, guestPort: number, proto = 'udp'): Promise<string> =>
    fwd.execute(
      JSON.stringify({
        execute: 'add_hostfwd',
        arguments: { proto, host_addr: '127.0.0.1', host_port: hostPort, guest_port: guestPort },
      }),
    );
  return { ...r, fwd, binds, accepts, nat, add };
}

/** An accepted host TCP socket that does nothing but count resets. */
function acceptedSocket(onReset: () => void = () => {}): HostTcpAccept {
  return () => ({
    write: () => false,
    end: () => {},
    pause: () => {},
    resume: () => {},
    reset: onReset,
    destroy: () => {},
  });
}

/** The UDP datagrams among frames to the guest (whole ones only). */
function datagrams(frames: Buffer[]): { ip: Ipv4Packet; udp: UdpDatagram }[] {
  return frames
    .filter((f) => etherType(f) === EtherType.IPv4)
    .map(ipOf)
    .filter((ip) => ip.protocol === IpProtocol.UDP && !ip.isFragment)
    .map((ip) => ({ ip, udp: UdpDatagram.parse(ip.buf, ip.payloadOffset, ip.payloadLength) }));
}

test('each loopback peer is a gateway port of its own; replies go back to that peer', async () => {
  const t = setup();
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  assert.equal(await t.add(5353, 53), '{"return":{"id":1}}');
  const socket = t.binds[0]!;
  socket.events.message(Buffer.from('from a'), PEER_A);
  socket.events.message(Buffer.from('from b'), PEER_B);
  socket.events.message(Buffer.from('again a'), PEER_A);
  const [a1, b1, a2] = datagrams(t.out);
  assert.ok(a1 && b1 && a2, `${t.out.length} frames`);
  for (const d of [a1, b1, a2]) {
    assert.equal(d.ip.src, GATEWAY);
    assert.equal(d.ip.dst, GUEST_IP);
    assert.equal(d.udp.dstPort, 53);
  }
  // The peers' own ports, free toward this guest port.
  assert.equal(a1.udp.srcPort, PEER_A.port);
  assert.equal(b1.udp.srcPort, PEER_B.port);
  assert.deepEqual(Uint8Array.from(t.out[0]!.subarray(0, 6)), GUEST_MAC);
  assert.deepEqual(Uint8Array.from(t.out[0]!.subarray(6, 12)), GATEWAY_MAC);
  assert.equal(Buffer.from(a1.udp.payload).toString(), 'from a');
  assert.equal(a1.udp.srcPort, a2.udp.srcPort);
  assert.notEqual(a1.udp.srcPort, b1.udp.srcPort);

  t.input.next(guestUdp(Buffer.from('to b'), { srcPort: 53, dstPort: b1.udp.srcPort }));
  t.input.next(guestUdp(Buffer.from('to a'), { srcPort: 53, dstPort: a1.udp.srcPort }));
  assert.deepEqual(
    socket.sent.map((s) => [s.data.toString(), s.to]),
    [
      ['to b', PEER_B],
      ['to a', PEER_A],
    ],
  );
  assert.equal(t.nat.sockets.length, 0, 'the UDP NAT never saw them');

  // From another guest port, it is not a reply: the NAT takes it.
  t.input.next(guestUdp(Buffer.from('x'), { srcPort: 54, dstPort: a1.udp.srcPort }));
  assert.equal(t.nat.sockets.length, 1);
  assert.equal(socket.sent.length, 2);
  assert.equal(t.counter('hostfwd.udp.peer-opened'), 2);
});

test('a peer the guest can answer is shown as itself, and its replies reach it', async () => {
  const t = setup();
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  await t.add(5353, 53);
  const socket = t.binds[0]!;
  const peer = { address: '198.51.100.7', port: 40003 };
  socket.events.message(Buffer.from('hello'), peer);
  const [d] = datagrams(t.out);
  assert.equal(d!.ip.src, 0xc6336407);
  assert.equal(d!.udp.srcPort, 40003);
  assert.deepEqual(Uint8Array.from(t.out[0]!.subarray(6, 12)), GATEWAY_MAC);
  t.input.next(guestUdp(Buffer.from('back'), { srcPort: 53, dst: 0xc6336407, dstPort: 40003 }));
  assert.deepEqual(
    socket.sent.map((s) => [s.data.toString(), s.to]),
    [['back', peer]],
  );
  assert.equal(t.nat.sockets.length, 0, 'the UDP NAT never saw it');
  // The same address and port from the guest's other ports is NAT traffic.
  t.input.next(guestUdp(Buffer.from('x'), { srcPort: 54, dst: 0xc6336407, dstPort: 40003 }));
  assert.equal(t.nat.sockets.length, 1);
});

test('a datagram over the MTU reaches the guest in fragments that reassemble intact', async () => {
  const t = setup(1500);
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  await t.add(5353, 53);
  const data = pattern(4000, 3);
  t.binds[0]!.events.message(data, PEER_A);
  assert.equal(t.out.length, 3);
  assert.equal(t.counter('ipv4.fragment.sent'), 3);
  const reassembler = new Ipv4Reassembler();
  let packet: Uint8Array | undefined;
  for (const frame of t.out) {
    assert.ok(frame.length <= 14 + 1500);
    packet = reassembler.add(ipOf(frame), 0).packet ?? packet;
  }
  assert.ok(packet);
  const whole = Ipv4Packet.parse(packet, 0);
  const udp = UdpDatagram.parseV4(
    whole.buf,
    whole.payloadOffset,
    whole.payloadLength,
    whole.src,
    whole.dst,
  );
  assert.deepEqual(Buffer.from(udp.payload), data);
});

test("a peer expires after 60 s idle; then its port is the NAT's again", async () => {
  const t = setup();
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  await t.add(5353, 53);
  const socket = t.binds[0]!;
  socket.events.message(Buffer.from('q'), PEER_A);
  const port = datagrams(t.out)[0]!.udp.srcPort;
  const reply = (): void =>
    t.input.next(guestUdp(Buffer.from('r'), { srcPort: 53, dstPort: port }));

  t.advanceTo(50_000);
  reply(); // keeps it alive
  t.advanceTo(109_000);
  reply();
  assert.equal(socket.sent.length, 2);
  assert.equal(t.counter('hostfwd.udp.peer-expired'), 0);

  t.advanceTo(169_001);
  assert.equal(t.counter('hostfwd.udp.peer-expired'), 1);
  reply();
  assert.equal(socket.sent.length, 2);
  assert.equal(t.nat.sockets.length, 1, 'no longer a forward reply');
});

test('an unknown guest MAC is asked by ARP; datagrams wait, or drop when unanswered', async () => {
  const t = setup();
  await t.add(5353, 53);
  const socket = t.binds[0]!;
  socket.events.message(Buffer.from('one'), PEER_A);
  socket.events.message(Buffer.from('two'), PEER_A);
  assert.equal(t.out.length, 1);
  assert.equal(etherType(t.out[0]!), EtherType.ARP);
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  assert.deepEqual(
    datagrams(t.out).map((d) => Buffer.from(d.udp.payload).toString()),
    ['one', 'two'],
  );

  const u = setup();
  await u.add(5353, 53);
  u.binds[0]!.events.message(Buffer.from('lost'), PEER_A);
  u.binds[0]!.events.message(Buffer.from('lost'), PEER_B);
  u.advanceTo(10_000);
  assert.equal(u.out.filter((f) => etherType(f) === EtherType.ARP).length, 3);
  assert.equal(datagrams(u.out).length, 0);
  assert.equal(u.counter('hostfwd.udp.arp-timeout'), 2);
});

test('a TCP forward to a guest that never answers ARP resets the host connection', async () => {
  const t = setup();
  await t.add(8080, 80, 'tcp');
  let reset = 0;
  t.accepts[0]!(
    acceptedSocket(() => void reset++),
    { address: '127.0.0.1', port: 40000 },
  );
  const arps = (): number => t.out.filter((f) => etherType(f) === EtherType.ARP).length;
  assert.equal(arps(), 1, 'asked at once');
  t.advanceTo(1_500);
  assert.equal(reset, 0, 'still asking');
  t.advanceTo(10_000);
  assert.equal(arps(), 3);
  assert.equal(reset, 1);
  assert.equal(t.counter('hostfwd.arp-timeout'), 1);
  assert.equal(t.out.filter((f) => etherType(f) === EtherType.IPv4).length, 0, 'no SYN');
});

test('gateway ports never clash with TCP forwards or other UDP forwards to the guest port', async () => {
  const t = setup();
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  await t.add(8080, 53, 'tcp');
  await t.add(5353, 53);
  await t.add(5354, 53);
  // A TCP forwarded connection from a client on the host's loopback: the
  // gateway stands in for it with the client's own port, 49152, which is
  // where UDP forwards start counting.
  t.accepts[0]!(acceptedSocket(), { address: '127.0.0.1', port: 49152 });
  const syn = ipOf(t.out.at(-1)!);
  const tcpPort = Buffer.from(syn.buf).readUInt16BE(syn.payloadOffset);
  t.binds[0]!.events.message(Buffer.from('a'), PEER_A);
  t.binds[1]!.events.message(Buffer.from('b'), PEER_A);
  const ports = [tcpPort, ...datagrams(t.out).map((d) => d.udp.srcPort)];
  assert.equal(ports.length, 3);
  assert.equal(new Set(ports).size, 3, `ports ${ports.join(' ')}`);
});

test('remove closes the socket; list shows udp; a port in use fails the add', async () => {
  const t = setup();
  t.ctx.neighbors.learn(GUEST_IP, GUEST_MAC);
  await t.add(5353, 53);
  assert.equal(
    await t.add(5353, 54),
    '{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}',
  );
  const list = JSON.parse(await t.fwd.execute('{"execute":"list_hostfwd"}')) as {
    entries: { id: number; proto: string; host_port: number }[];
  };
  assert.deepEqual(
    list.entries.map((e) => [e.id, e.proto, e.host_port]),
    [[1, 'udp', 5353]],
  );
  t.binds[0]!.events.message(Buffer.from('q'), PEER_A);
  const port = datagrams(t.out)[0]!.udp.srcPort;

  assert.equal(
    await t.fwd.execute('{"execute":"remove_hostfwd","arguments":{"id":1}}'),
    '{"return":{}}',
  );
  assert.equal(t.binds[0]!.closed, true);
  t.input.next(guestUdp(Buffer.from('r'), { srcPort: 53, dstPort: port }));
  assert.equal(t.binds[0]!.sent.length, 0);
  assert.equal(t.nat.sockets.length, 1, 'its peers are gone');
  assert.equal(await t.add(5353, 53), '{"return":{"id":2}}', 'the port is free again');
});
