/**
 * The DHCP service in the stack: DISCOVER/OFFER/REQUEST/ACK from a guest
 * with no address, replies addressed as RFC 2131 4.1 says, the options
 * slirp4netns hands out, and --disable-dns leaving the DNS option out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pipe } from 'rxjs';
import { networkConfig } from '../../src/config.js';
import { dhcpService } from '../../src/operators/dhcp.js';
import { ipv4Input } from '../../src/operators/ipv4.js';
import { udpInput, udpNat } from '../../src/operators/udp.js';
import {
  BootpOp,
  DhcpMessageType,
  DhcpOption,
  dhcpValue,
  encodeDhcp,
  parseDhcp,
  type DhcpOptionEntry,
} from '../../src/protocols/dhcp.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { fakeHost } from './fake-udp.js';
import { BROADCAST_MAC, GATEWAY, GUEST_MAC, ipOf, rig, udpFrame } from './guest-frames.js';

function dhcpRig(flags = {}, mtu = 1500) {
  const host = fakeHost();
  const r = rig<Buffer, Buffer>(
    (ctx) =>
      pipe(
        ipv4Input(ctx),
        udpInput(ctx, [dhcpService(ctx)], udpNat(ctx, { openSocket: host.open })),
      ),
    networkConfig(undefined, mtu, flags),
  );
  return { ...r, host };
}

/** A client message from the guest, as a frame to the broadcast address. */
function clientFrame(
  type: number,
  options: DhcpOptionEntry[] = [],
  ciaddr = 0,
  broadcastFlag = false,
): Buffer {
  const chaddr = new Uint8Array(16);
  chaddr.set(GUEST_MAC);
  const payload = encodeDhcp({
    op: BootpOp.Request,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x12345678,
    secs: 0,
    flags: broadcastFlag ? 0x8000 : 0,
    ciaddr,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr,
    sname: new Uint8Array(64),
    file: new Uint8Array(128),
    options: [[DhcpOption.MessageType, dhcpValue.u8(type)], ...options],
  });
  const unicast = ciaddr !== 0;
  return udpFrame(payload, {
    src: ciaddr,
    dst: unicast ? GATEWAY : 0xffffffff,
    dstMac: unicast ? undefined : BROADCAST_MAC,
    srcPort: 68,
    dstPort: 67,
  });
}

function replyOf(frame: Buffer) {
  const ip = ipOf(frame);
  const udp = UdpDatagram.parseV4(frame, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst);
  return { ip, udp, dhcp: parseDhcp(udp.payload) };
}

test('DISCOVER gets an OFFER of network+15 with the options; REQUEST gets an ACK', () => {
  const r = dhcpRig();
  r.input.next(clientFrame(DhcpMessageType.Discover));
  assert.equal(r.out.length, 1);
  const offer = replyOf(r.out[0]!);
  // RFC 2131 4.1: no broadcast flag, no ciaddr: unicast to chaddr and yiaddr.
  assert.deepEqual(r.out[0]!.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.equal(offer.ip.src, GATEWAY);
  assert.equal(offer.ip.dst, 0x0a00020f);
  assert.equal(offer.udp.srcPort, 67);
  assert.equal(offer.udp.dstPort, 68);
  assert.equal(offer.dhcp.messageType, DhcpMessageType.Offer);
  assert.equal(offer.dhcp.xid, 0x12345678);
  assert.equal(offer.dhcp.yiaddr, 0x0a00020f);
  assert.equal(offer.dhcp.subnetMask, 0xffffff00);
  assert.deepEqual(offer.dhcp.routers, [GATEWAY]);
  assert.deepEqual(offer.dhcp.dnsServers, [0x0a000203]);
  assert.equal(offer.dhcp.leaseTimeSec, 86400);
  assert.equal(offer.dhcp.interfaceMtu, 1500);
  assert.equal(offer.dhcp.serverId, GATEWAY);

  r.input.next(
    clientFrame(DhcpMessageType.Request, [
      [DhcpOption.RequestedIp, dhcpValue.u32(0x0a00020f)],
      [DhcpOption.ServerId, dhcpValue.u32(GATEWAY)],
    ]),
  );
  const ack = replyOf(r.out[1]!);
  assert.equal(ack.dhcp.messageType, DhcpMessageType.Ack);
  assert.equal(ack.dhcp.yiaddr, 0x0a00020f);
  assert.equal(r.counter('dhcp.replied'), 2);
  assert.equal(r.host.sockets.length, 0, 'nothing went to the NAT');
});

test('a client that sets the broadcast flag is answered by broadcast (IPv4 and Ethernet)', () => {
  const r = dhcpRig();
  r.input.next(clientFrame(DhcpMessageType.Discover, [], 0, true));
  const offer = replyOf(r.out[0]!);
  assert.deepEqual(r.out[0]!.subarray(0, 6), Buffer.from(BROADCAST_MAC));
  assert.equal(offer.ip.dst, 0xffffffff);
  assert.equal(offer.dhcp.yiaddr, 0x0a00020f);
});

test('a renewing client (ciaddr set) is answered by unicast to its MAC and address', () => {
  const r = dhcpRig();
  r.input.next(
    clientFrame(
      DhcpMessageType.Request,
      [[DhcpOption.RequestedIp, dhcpValue.u32(0x0a00020f)]],
      0x0a00020f,
    ),
  );
  const ack = replyOf(r.out[0]!);
  assert.deepEqual(r.out[0]!.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.equal(ack.ip.dst, 0x0a00020f);
  assert.equal(ack.dhcp.messageType, DhcpMessageType.Ack);
});

test('--disable-dns leaves the DNS option out; the MTU option follows --mtu', () => {
  const r = dhcpRig({ disableDns: true }, 65520);
  r.input.next(clientFrame(DhcpMessageType.Discover));
  const offer = replyOf(r.out[0]!);
  assert.deepEqual(offer.dhcp.dnsServers, []);
  assert.equal(offer.dhcp.interfaceMtu, 65520);
});

test('RELEASE is counted, not answered; a malformed message is counted by its code', () => {
  const r = dhcpRig();
  r.input.next(clientFrame(DhcpMessageType.Discover));
  r.input.next(
    clientFrame(
      DhcpMessageType.Release,
      [[DhcpOption.ServerId, dhcpValue.u32(GATEWAY)]],
      0x0a00020f,
    ),
  );
  const junk = udpFrame(Buffer.alloc(300), {
    dst: 0xffffffff,
    dstMac: BROADCAST_MAC,
    srcPort: 68,
    dstPort: 67,
  });
  r.input.next(junk);
  assert.equal(r.out.length, 1);
  assert.equal(r.counter('dhcp.truncated') + r.counter('dhcp.bad-op'), 1);
  assert.ok(r.counter('dhcp.released') + r.counter('dhcp.bad-release') === 1);
  assert.equal(r.out[0]![ETH_HEADER_LENGTH + 9], 17);
});
