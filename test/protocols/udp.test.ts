import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  UdpDatagram,
  UDP_HEADER,
  writeUdp,
  writeUdpV4,
  writeUdpV6,
} from '../../src/protocols/udp.js';
import { ParseError } from '../../src/protocols/errors.js';
import { pseudoSumV4, pseudoSumV6 } from '../../src/protocols/checksum.js';
import { parseIpv4 } from '../../src/protocols/address.js';

// Made offline with Python; tshark (udp.check_checksum) reads each checksum
// as "[correct]" and the payload as a DNS query for example.com A.
const QUERY = Buffer.from('abcd01000001000000000000076578616d706c6503636f6d0000010001', 'hex');
// 10.0.2.100:38181 -> 10.0.2.3:53
const V4 = Buffer.from('952500350025d6a7' + QUERY.toString('hex'), 'hex');
// The same without a checksum (0: none, allowed over IPv4 only).
const V4_NO_SUM = Buffer.from('9525003500250000' + QUERY.toString('hex'), 'hex');
// [fd00::100]:38181 -> [fd00::3]:53
const V6 = Buffer.from('952500350025f409' + QUERY.toString('hex'), 'hex');

const GUEST = parseIpv4('10.0.2.100');
const DNS = parseIpv4('10.0.2.3');
const GUEST6 = Buffer.from('fd000000000000000000000000000100', 'hex');
const DNS6 = Buffer.from('fd000000000000000000000000000003', 'hex');

test('parses and verifies a datagram over IPv4', () => {
  const d = UdpDatagram.parseV4(V4, 0, V4.length, GUEST, DNS);
  assert.equal(d.srcPort, 38181);
  assert.equal(d.dstPort, 53);
  assert.equal(d.length, 37);
  assert.equal(d.checksum, 0xd6a7);
  assert.equal(d.payloadOffset, 8);
  assert.equal(d.payloadLength, 29);
  assert.deepEqual(d.payload, QUERY);
});

test('re-encodes over IPv4 and IPv6 byte for byte', () => {
  const out = Buffer.alloc(V4.length + 2);
  assert.equal(writeUdpV4(out, 2, GUEST, DNS, 38181, 53, QUERY), 2 + V4.length);
  assert.deepEqual(out.subarray(2), V4);

  const out6 = Buffer.alloc(V6.length);
  writeUdpV6(out6, 0, GUEST6, DNS6, 38181, 53, QUERY);
  assert.deepEqual(out6, V6);
  const pseudo = pseudoSumV6(GUEST6, DNS6, 17, V6.length);
  assert.equal(writeUdp(out6.fill(0), 0, 38181, 53, QUERY, pseudo), V6.length);
  assert.deepEqual(out6, V6);
});

test('writes a payload already in place without copying it over itself', () => {
  const buf = Buffer.alloc(V4.length);
  QUERY.copy(buf, UDP_HEADER);
  writeUdpV4(buf, 0, GUEST, DNS, 38181, 53, buf.subarray(UDP_HEADER));
  assert.deepEqual(buf, V4);
});

test('parses and verifies a datagram over IPv6', () => {
  const d = UdpDatagram.parseV6(V6, 0, V6.length, GUEST6, DNS6);
  assert.equal(d.checksum, 0xf409);
  assert.deepEqual(d.payload, QUERY);
});

test('a zero checksum means none over IPv4 and is refused over IPv6', () => {
  const d = UdpDatagram.parseV4(V4_NO_SUM, 0, V4_NO_SUM.length, GUEST, DNS);
  assert.equal(d.checksum, 0);
  assert.equal(d.checksumValid(12345), true);
  assert.throws(() => UdpDatagram.parse(V4_NO_SUM, 0, V4_NO_SUM.length, true), {
    code: 'udp.zero-checksum',
  });
});

test('a computed checksum of zero is sent as 0xffff', () => {
  const buf = new Uint8Array(10);
  const pseudo = pseudoSumV4(GUEST, DNS, 17, 10);
  writeUdp(buf, 0, 1, 2, Uint8Array.of(0, 0), pseudo);
  const word = Uint8Array.of(buf[6]!, buf[7]!);
  writeUdp(buf, 0, 1, 2, word, pseudo);
  assert.deepEqual([buf[6], buf[7]], [0xff, 0xff]);
  assert.equal(UdpDatagram.parseV4(buf, 0, 10, GUEST, DNS).checksum, 0xffff);
});

test('a corrupted datagram or the wrong pseudo header fails the checksum', () => {
  const bad = Buffer.from(V4);
  bad[20] ^= 1;
  assert.throws(() => UdpDatagram.parseV4(bad, 0, bad.length, GUEST, DNS), {
    code: 'udp.bad-checksum',
  });
  assert.throws(() => UdpDatagram.parseV4(V4, 0, V4.length, GUEST, DNS + 1), {
    code: 'udp.bad-checksum',
  });
  assert.throws(() => UdpDatagram.parseV6(V6, 0, V6.length, DNS6, DNS6), {
    code: 'udp.bad-checksum',
  });
});

test('bytes past the length field are padding, not payload', () => {
  const padded = Buffer.concat([V4, Buffer.alloc(9)]);
  const d = UdpDatagram.parseV4(padded, 0, padded.length, GUEST, DNS);
  assert.equal(d.length, V4.length);
  assert.deepEqual(d.payload, QUERY);
});

test('every truncation and every bad length is a typed parse error', () => {
  for (let n = 0; n < V4.length; n++) {
    assert.throws(() => UdpDatagram.parse(V4, 0, n), ParseError);
    assert.throws(() => UdpDatagram.parse(V4.subarray(0, n), 0, n), ParseError);
  }
  assert.throws(() => UdpDatagram.parse(V4, 0, V4.length + 1), { code: 'udp.truncated' });
  for (const [len, code] of [
    [0, 'udp.bad-length'],
    [7, 'udp.bad-length'],
    [38, 'udp.truncated'],
    [0xffff, 'udp.truncated'],
  ] as const) {
    const bad = Buffer.from(V4);
    bad.writeUInt16BE(len, 4);
    assert.throws(() => UdpDatagram.parse(bad, 0, bad.length), { code });
  }
});

test('an empty datagram is fine', () => {
  const buf = new Uint8Array(8);
  writeUdpV4(buf, 0, GUEST, DNS, 7, 7, new Uint8Array(0));
  const d = UdpDatagram.parseV4(buf, 0, 8, GUEST, DNS);
  assert.equal(d.payloadLength, 0);
});

test('an oversized payload or a short buffer is refused', () => {
  assert.throws(() => writeUdpV4(new Uint8Array(70000), 0, 1, 2, 3, 4, new Uint8Array(65528)), {
    code: 'udp.too-long',
  });
  assert.throws(() => writeUdpV4(new Uint8Array(10), 0, 1, 2, 3, 4, new Uint8Array(3)), {
    code: 'udp.buffer',
  });
});
