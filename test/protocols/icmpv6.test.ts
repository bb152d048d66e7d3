import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Icmpv6Message,
  Icmpv6Type,
  Icmpv6UnreachableCode,
  icmpv6ErrorLength,
  mayReplyWithErrorV6,
  writeIcmpv6EchoReply,
  writeIcmpv6Error,
} from '../../src/protocols/icmpv6.js';
import { Ipv6Packet, writeIpv6Header } from '../../src/protocols/ipv6.js';
import { ParseError } from '../../src/protocols/errors.js';
import { parseIpv6 } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

// Made offline with Python; tshark finds each ICMPv6 checksum correct.
// Echo request fd00::100 -> fd00::2, id 0x1234, seq 1, 16 bytes.
const ECHO_REQUEST = hex(
  '6000000000183a40fd000000000000000000000000000100fd0000000000000000000000000000028000393312340001202122232425262728292a2b2c2d2e2f',
);
// The ICMPv6 part of its reply, fd00::2 -> fd00::100.
const ECHO_REPLY = hex('8100383312340001202122232425262728292a2b2c2d2e2f');
// UDP fd00::100:40000 -> fd00::2:9, "hello, port9".
const OFFENDING = hex(
  '6000000000141140fd000000000000000000000000000100fd0000000000000000000000000000029c4000090014205f68656c6c6f2c20706f727439',
);
// Port unreachable about it, fd00::2 -> fd00::100, quoting it whole.
const UNREACHABLE = hex(
  '0104924a000000006000000000141140fd000000000000000000000000000100fd0000000000000000000000000000029c4000090014205f68656c6c6f2c20706f727439',
);
const GUEST = parseIpv6('fd00::100');
const GATEWAY = parseIpv6('fd00::2');

test('parses an echo request through its packet', () => {
  const m = Icmpv6Message.ofPacket(Ipv6Packet.parse(ECHO_REQUEST));
  assert.deepEqual(
    [m.type, m.code, m.checksum, m.identifier, m.sequence, m.isError, m.length],
    [Icmpv6Type.EchoRequest, 0, 0x3933, 0x1234, 1, false, 24],
  );
  assert.deepEqual(m.body, ECHO_REQUEST.subarray(48));
});

test('writes the echo reply byte for byte', () => {
  const m = Icmpv6Message.ofPacket(Ipv6Packet.parse(ECHO_REQUEST));
  const out = new Uint8Array(30);
  assert.equal(writeIcmpv6EchoReply(m, out, 3, GATEWAY, GUEST), 27);
  assert.deepEqual(out.subarray(3, 27), ECHO_REPLY);
  const reply = Icmpv6Message.parse(out, 3, 24, GATEWAY, GUEST);
  assert.equal(reply.type, Icmpv6Type.EchoReply);
});

test('the reply checksum follows its own addresses', () => {
  const m = Icmpv6Message.ofPacket(Ipv6Packet.parse(ECHO_REQUEST));
  const out = new Uint8Array(24);
  const other = parseIpv6('fe80::2');
  writeIcmpv6EchoReply(m, out, 0, other, GUEST);
  assert.doesNotThrow(() => Icmpv6Message.parse(out, 0, 24, other, GUEST));
  assert.throws(() => Icmpv6Message.parse(out, 0, 24, GATEWAY, GUEST), {
    code: 'icmpv6.bad-checksum',
  });
});

test('writes a port unreachable byte for byte', () => {
  assert.equal(icmpv6ErrorLength(OFFENDING), UNREACHABLE.length);
  const out = new Uint8Array(UNREACHABLE.length);
  const end = writeIcmpv6Error(
    out,
    0,
    Icmpv6Type.DestinationUnreachable,
    Icmpv6UnreachableCode.PortUnreachable,
    OFFENDING,
    GATEWAY,
    GUEST,
  );
  assert.equal(end, UNREACHABLE.length);
  assert.deepEqual(out, UNREACHABLE);
  assert.equal(Icmpv6Message.parse(out, 0, end, GATEWAY, GUEST).isError, true);
});

test('an error never takes the packet past 1280 bytes; packet too big carries the MTU', () => {
  const big = new Uint8Array(3000);
  assert.equal(icmpv6ErrorLength(big), 1240);
  const out = new Uint8Array(1240);
  writeIcmpv6Error(out, 0, Icmpv6Type.PacketTooBig, 0, big, GATEWAY, GUEST, 1500);
  const m = Icmpv6Message.parse(out, 0, 1240, GATEWAY, GUEST);
  assert.equal(m.mtu, 1500);
  assert.equal(m.body.length, 1232);
});

test('RFC 4443 2.4 (e) says when not to send an error', () => {
  const packet = (src: string, dst: string, next: number, first?: number) => {
    const b = new Uint8Array(48);
    const payloadLength = first === undefined ? 8 : 8;
    writeIpv6Header(b, 0, {
      src: parseIpv6(src),
      dst: parseIpv6(dst),
      nextHeader: next,
      payloadLength,
    });
    if (first !== undefined) b[40] = first;
    return Ipv6Packet.parse(b);
  };
  const g = 'fd00::100';
  assert.equal(mayReplyWithErrorV6(packet(g, 'fd00::2', 17), 1), true);
  assert.equal(mayReplyWithErrorV6(packet(g, 'fd00::2', 58, 128), 1), true);
  assert.equal(mayReplyWithErrorV6(packet(g, 'fd00::2', 58, 1), 1), false);
  assert.equal(mayReplyWithErrorV6(packet(g, 'fd00::2', 58, 127), 3), false);
  assert.equal(mayReplyWithErrorV6(packet(g, 'ff02::1', 17), 1), false);
  assert.equal(mayReplyWithErrorV6(packet(g, 'ff02::1', 17), Icmpv6Type.PacketTooBig), true);
  assert.equal(mayReplyWithErrorV6(packet(g, 'ff02::1', 17), 4, 2), true);
  assert.equal(mayReplyWithErrorV6(packet(g, 'ff02::1', 17), 4, 1), false);
  assert.equal(mayReplyWithErrorV6(packet('::', 'fd00::2', 17), 1), false);
  assert.equal(mayReplyWithErrorV6(packet('ff02::5', 'fd00::2', 17), 1), false);
});

test('a first fragment of an ICMPv6 error gets no error; a later one cannot be told', () => {
  // fd00::100 -> fd00::2, fragment header (next header 58, offset `units`,
  // M set, id 9), then 8 bytes of data starting with ICMPv6 type `first`.
  const fragment = (units: number, first: number) => {
    const b = new Uint8Array(56);
    const src = parseIpv6('fd00::100');
    writeIpv6Header(b, 0, { src, dst: parseIpv6('fd00::2'), nextHeader: 44, payloadLength: 16 });
    b.set([58, 0, (units * 8) >> 8, ((units * 8) & 0xf8) | 1, 0, 0, 0, 9], 40);
    b[48] = first;
    return Ipv6Packet.parse(b);
  };
  assert.equal(fragment(0, 1).fragment?.offset, 0);
  assert.equal(mayReplyWithErrorV6(fragment(0, 1), Icmpv6Type.TimeExceeded, 1), false);
  assert.equal(mayReplyWithErrorV6(fragment(0, 128), Icmpv6Type.TimeExceeded, 1), true);
  assert.equal(mayReplyWithErrorV6(fragment(1, 1), Icmpv6Type.TimeExceeded, 1), true);
});

test('every truncation is a typed parse error; a non-ICMPv6 packet is refused', () => {
  const icmp = ECHO_REQUEST.subarray(40);
  for (let n = 0; n < icmp.length; n++) {
    assert.throws(() => Icmpv6Message.parse(icmp, 0, n, GUEST, GATEWAY), ParseError);
    assert.throws(
      () => Icmpv6Message.parse(icmp.subarray(0, n), 0, 24, GUEST, GATEWAY),
      ParseError,
    );
  }
  assert.throws(() => Icmpv6Message.ofPacket(Ipv6Packet.parse(OFFENDING)), {
    code: 'icmpv6.not-icmpv6',
  });
  assert.throws(
    () =>
      writeIcmpv6EchoReply(
        Icmpv6Message.ofPacket(Ipv6Packet.parse(ECHO_REQUEST)),
        new Uint8Array(10),
        0,
        GUEST,
        GATEWAY,
      ),
    ParseError,
  );
});
