import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Icmpv4Message,
  Icmpv4Type,
  UnreachableCode,
  icmpv4ErrorLength,
  mayReplyWithError,
  writeEchoReply,
  writeIcmpv4Error,
} from '../../src/protocols/icmpv4.js';
import { Ipv4Packet, writeIpv4Header, IpProtocol } from '../../src/protocols/ipv4.js';
import { ParseError } from '../../src/protocols/errors.js';
import { parseIpv4 } from '../../src/protocols/address.js';

// Fixtures made offline with a Python script and checked with tshark
// (`ip.check_checksum`): every checksum below reads "[correct]".

// An echo request from 10.0.2.100 to 10.0.2.2, as Linux sends it.
const ECHO = Buffer.from(
  '4500005481e940004001a05a0a0002640a000202' +
    '0800b8f1000100016b0b5f6700000000a8c60d0000000000' +
    '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
  'hex',
);
// Its ICMP reply (type 0, checksum 0xc0f1).
const ECHO_REPLY = Buffer.from(
  '0000c0f1000100016b0b5f6700000000a8c60d0000000000' +
    '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
  'hex',
);
// A UDP datagram 10.0.2.100:40000 -> 10.0.2.2:9 carrying "hello, port9".
const OFFENDING = Buffer.from(
  '45000028123440004011102c0a0002640a0002029c400009001402fd68656c6c6f2c20706f727439',
  'hex',
);
// The port unreachable about it: header + 8 bytes quoted.
const UNREACHABLE = Buffer.from(
  '03035da20000000045000028123440004011102c0a0002640a0002029c400009001402fd',
  'hex',
);

function icmpOf(packet: Buffer): Icmpv4Message {
  const ip = Ipv4Packet.parse(packet, 0);
  return Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
}

test('parses an echo request', () => {
  const m = icmpOf(ECHO);
  assert.equal(m.type, Icmpv4Type.EchoRequest);
  assert.equal(m.code, 0);
  assert.equal(m.isEchoRequest, true);
  assert.equal(m.isError, false);
  assert.equal(m.identifier, 1);
  assert.equal(m.sequence, 1);
  assert.equal(m.checksum, 0xb8f1);
  assert.equal(m.body.length, 56);
  assert.equal(m.body[16], 0x10);
});

test('writes the echo reply byte for byte, into another buffer or in place', () => {
  const m = icmpOf(ECHO);
  const out = Buffer.alloc(70, 0xee);
  assert.equal(writeEchoReply(m, out, 3), 3 + 64);
  assert.deepEqual(out.subarray(3, 67), ECHO_REPLY);
  assert.equal(out[2], 0xee);
  assert.equal(out[67], 0xee);

  const copy = Buffer.from(ECHO);
  const inPlace = icmpOf(copy);
  writeEchoReply(inPlace, copy, inPlace.offset);
  assert.deepEqual(copy.subarray(20), ECHO_REPLY);
  assert.equal(Icmpv4Message.parse(copy, 20, 64).type, Icmpv4Type.EchoReply);
});

test('the echo reply survives a request buffer overlapping the output', () => {
  const buf = Buffer.alloc(ECHO.length + 4);
  ECHO.copy(buf, 4);
  const m = icmpOf(buf.subarray(4));
  writeEchoReply(m, buf, 0);
  assert.deepEqual(buf.subarray(0, 64), ECHO_REPLY);
});

test('writes a port unreachable byte for byte', () => {
  const offending = Ipv4Packet.parse(OFFENDING, 0);
  assert.equal(icmpv4ErrorLength(offending), UNREACHABLE.length);
  const out = Buffer.alloc(UNREACHABLE.length);
  const end = writeIcmpv4Error(
    out,
    0,
    Icmpv4Type.DestinationUnreachable,
    UnreachableCode.Port,
    offending,
  );
  assert.equal(end, UNREACHABLE.length);
  assert.deepEqual(out, UNREACHABLE);

  const m = Icmpv4Message.parse(out);
  assert.equal(m.isError, true);
  assert.deepEqual(m.body, OFFENDING.subarray(0, 28));
});

test('fragmentation needed carries the next-hop MTU', () => {
  const offending = Ipv4Packet.parse(OFFENDING, 0);
  const out = new Uint8Array(64);
  const end = writeIcmpv4Error(
    out,
    4,
    Icmpv4Type.DestinationUnreachable,
    UnreachableCode.FragmentationNeeded,
    offending,
    1400,
  );
  const m = Icmpv4Message.parse(out, 4, end - 4);
  assert.equal(m.nextHopMtu, 1400);
  assert.equal(m.restOfHeader, 1400);
});

test('a short payload is quoted whole', () => {
  const buf = new Uint8Array(23);
  writeIpv4Header(buf, 0, {
    src: parseIpv4('10.0.2.100'),
    dst: parseIpv4('10.0.2.2'),
    protocol: 200,
    payloadLength: 3,
  });
  const p = Ipv4Packet.parse(buf, 0);
  assert.equal(icmpv4ErrorLength(p), 8 + 23);
  const out = new Uint8Array(31);
  writeIcmpv4Error(out, 0, Icmpv4Type.DestinationUnreachable, UnreachableCode.Protocol, p);
  assert.deepEqual(Icmpv4Message.parse(out).body, buf);
});

test('RFC 1122 says when not to send an error', () => {
  const make = (src: string, dst: string, protocol: number, payload: number[], frag = 0) => {
    const buf = new Uint8Array(20 + payload.length);
    writeIpv4Header(buf, 0, {
      src: parseIpv4(src),
      dst: parseIpv4(dst),
      protocol,
      payloadLength: payload.length,
    });
    if (frag !== 0) {
      buf[6] = frag >> 8;
      buf[7] = frag & 0xff;
      buf[10] = buf[11] = 0;
      writeChecksum(buf);
    }
    buf.set(payload, 20);
    return Ipv4Packet.parse(buf, 0);
  };
  const guest = '10.0.2.100';
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.UDP, [0])), true);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.ICMP, [8, 0])), true);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.ICMP, [3, 3])), false);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.ICMP, [11, 0])), false);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.ICMP, [])), false);
  assert.equal(mayReplyWithError(make(guest, '255.255.255.255', IpProtocol.UDP, [0])), false);
  assert.equal(mayReplyWithError(make(guest, '224.0.0.251', IpProtocol.UDP, [0])), false);
  assert.equal(mayReplyWithError(make('0.0.0.0', '10.0.2.2', IpProtocol.UDP, [0])), false);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.UDP, [0], 0x2000)), true);
  assert.equal(mayReplyWithError(make(guest, '10.0.2.2', IpProtocol.UDP, [0], 0x0001)), false);
});

function writeChecksum(header: Uint8Array): void {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (header[i]! << 8) | header[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  header[10] = (~s >> 8) & 0xff;
  header[11] = ~s & 0xff;
}

test('every truncation is a typed parse error', () => {
  const icmp = ECHO.subarray(20);
  for (let n = 0; n < icmp.length; n++) {
    assert.throws(() => Icmpv4Message.parse(icmp, 0, n), ParseError);
    assert.throws(() => Icmpv4Message.parse(icmp.subarray(0, n)), ParseError);
  }
  assert.throws(() => Icmpv4Message.parse(icmp, 0, icmp.length + 1), {
    code: 'icmpv4.truncated',
  });
});

test('a corrupted message is rejected by its checksum', () => {
  const bad = Buffer.from(ECHO.subarray(20));
  bad[30] ^= 0x40;
  assert.throws(() => Icmpv4Message.parse(bad), { code: 'icmpv4.bad-checksum' });
});

test('an output buffer too small is a typed error', () => {
  const m = icmpOf(ECHO);
  assert.throws(() => writeEchoReply(m, new Uint8Array(63), 0), ParseError);
  const offending = Ipv4Packet.parse(OFFENDING, 0);
  assert.throws(() => writeIcmpv4Error(new Uint8Array(35), 0, 3, 3, offending), ParseError);
});
