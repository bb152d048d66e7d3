/**
 * The UDP path of the whole stack (DHCP, DNS forwarder, NAT) against
 * arbitrary datagrams from the guest and arbitrary answers from a fake
 * host: nothing throws, nothing counts as an internal error, and whatever
 * reaches the guest is a well-formed IPv4 packet with a valid UDP or ICMP
 * checksum, no larger than the MTU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { networkConfig } from '../../src/config.js';
import { stackContext } from '../../src/operators/context.js';
import { runStack } from '../../src/slirp.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import { Icmpv4Message } from '../../src/protocols/icmpv4.js';
import { IpProtocol, Ipv4Packet } from '../../src/protocols/ipv4.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { fakeHost } from '../operators/fake-udp.js';
import { udpFrame, BROADCAST_MAC } from '../operators/guest-frames.js';
import { numRuns } from './runs.js';
import { DhcpMessageType, DhcpOption, dhcpValue, encodeDhcp } from '../../src/protocols/dhcp.js';
import { encodeDnsQuery } from '../../src/protocols/dns.js';

const GATEWAY = 0x0a000202;
const DNS = 0x0a000203;

type Step =
  | { kind: 'guest'; to: 'dhcp' | 'dns' | 'nat'; port: number; payload: Uint8Array }
  | { kind: 'host'; socket: number; payload: Uint8Array }
  | { kind: 'echo'; socket: number }
  | { kind: 'error'; socket: number; code: string }
  | { kind: 'time'; ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('guest' as const),
    to: fc.constantFrom('dhcp' as const, 'dns' as const, 'nat' as const),
    port: fc.integer({ min: 1, max: 65535 }),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      fc
        .tuple(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom('a.test', 'b.example', '.'))
        .map(([id, name]) => encodeDnsQuery(id, name, 1)),
      fc
        .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })
        .map((edits) => {
          const m = Uint8Array.from(DISCOVER);
          for (const [at, v] of edits) m[at % m.length] = v;
          return m;
        }),
    ),
  }),
  fc.record({ kind: fc.constant('echo' as const), socket: fc.nat() }),
  fc.record({
    kind: fc.constant('host' as const),
    socket: fc.nat(),
    payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array(3000))),
  }),
  fc.record({
    kind: fc.constant('error' as const),
    socket: fc.nat(),
    code: fc.constantFrom('ECONNREFUSED', 'ENETUNREACH', 'EMSGSIZE', 'ENOBUFS'),
  }),
  fc.record({ kind: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 90_000 }) }),
);

/** A DHCPDISCOVER from the guest's MAC. */
const DISCOVER = encodeDhcp({
  op: 1,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 1,
  secs: 0,
  flags: 0,
  ciaddr: 0,
  yiaddr: 0,
  siaddr: 0,
  giaddr: 0,
  chaddr: Uint8Array.of(2, 0, 0, 0, 0, 1, ...new Uint8Array(10)),
  sname: new Uint8Array(64),
  file: new Uint8Array(128),
  options: [[DhcpOption.MessageType, dhcpValue.u8(DhcpMessageType.Discover)]],
});

/** What the host sent last, as an answer (the DNS QR bit set). */
function asAnswer(sent: Uint8Array | undefined): Uint8Array {
  const m = Uint8Array.from(sent ?? []);
  if (m.length > 2) m[2]! |= 0x80;
  return m;
}

function guestFrame(step: Extract<Step, { kind: 'guest' }>): Buffer {
  if (step.to === 'dhcp') {
    return udpFrame(step.payload, {
      dst: 0xffffffff,
      dstMac: BROADCAST_MAC,
      srcPort: 68,
      dstPort: 67,
    });
  }
  if (step.to === 'dns') return udpFrame(step.payload, { dst: DNS, dstPort: 53 });
  return udpFrame(step.payload, { dst: GATEWAY, dstPort: step.port, srcPort: step.port });
}

function checkToGuest(frame: Buffer, mtu: number): void {
  assert.ok(frame.length <= ETH_HEADER_LENGTH + mtu, `frame of ${frame.length} bytes`);
  const ip = Ipv4Packet.parse(frame, ETH_HEADER_LENGTH);
  if (ip.isFragment) return;
  if (ip.protocol === IpProtocol.UDP) {
    UdpDatagram.parseV4(frame, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst);
  } else {
    assert.equal(ip.protocol, IpProtocol.ICMP);
    Icmpv4Message.parse(frame, ip.payloadOffset, ip.payloadLength);
  }
}

test('arbitrary datagrams and host answers: no internal error, only well-formed frames out', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
      const scheduler = new VirtualTimeScheduler();
      const ctx = stackContext(networkConfig(), { scheduler, offload: false });
      const host = fakeHost();
      const input = new Subject<Buffer>();
      const out: Buffer[] = [];
      const sub = runStack(input, (f) => out.push(f), ctx, [], [], {
        udp: { openSocket: host.open, maxFlows: 8 },
        dns: { openSocket: host.open, upstream: '198.51.100.1' },
      });
      for (const step of steps) {
        const socket =
          host.sockets[
            step.kind === 'guest' || step.kind === 'time'
              ? 0
              : step.socket % Math.max(1, host.sockets.length)
          ];
        if (step.kind === 'guest') input.next(guestFrame(step));
        else if (step.kind === 'time') {
          scheduler.maxFrames = scheduler.frame + step.ms;
          scheduler.flush();
          scheduler.frame = scheduler.maxFrames;
        } else if (socket !== undefined && !socket.closed) {
          if (step.kind === 'host') socket.reply(step.payload);
          else if (step.kind === 'echo') socket.reply(asAnswer(socket.sent.at(-1)));
          else socket.fail(step.code);
        }
      }
      assert.equal(sub.closed, false);
      input.complete();
      for (const name of Object.keys(ctx.counters.snapshot())) {
        assert.doesNotMatch(name, /internal-error/);
      }
      for (const frame of out) checkToGuest(frame, ctx.config.mtu);
      assert.ok(
        host.sockets.every((s) => s.closed),
        'every socket closed at the end',
      );
    }),
    { numRuns: numRuns(200) },
  );
});
