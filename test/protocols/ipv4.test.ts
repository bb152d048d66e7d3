import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipv4Packet, writeIpv4Header, IpProtocol } from '../../src/protocols/ipv4.js';
import { ParseError } from '../../src/protocols/errors.js';
import { checksum } from '../../src/protocols/checksum.js';
import { parseIpv4, ipv4ToString } from '../../src/protocols/address.js';

// An ICMP echo request from 10.0.2.100 to 10.0.2.2, as Linux sends it.
const ECHO = Buffer.from(
  '4500005481e940004001a05a0a0002640a000202' +
    '0800b8f1000100016b0b5f6700000000a8c60d0000000000' +
    '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
  'hex',
);

test('parses a captured IPv4 header', () => {
  const p = Ipv4Packet.parse(ECHO, 0);
  assert.equal(p.headerLength, 20);
  assert.equal(p.totalLength, 84);
  assert.equal(p.protocol, IpProtocol.ICMP);
  assert.equal(ipv4ToString(p.src), '10.0.2.100');
  assert.equal(ipv4ToString(p.dst), '10.0.2.2');
  assert.equal(p.ttl, 64);
  assert.equal(p.dontFragment, true);
  assert.equal(p.isFragment, false);
  assert.equal(p.payloadLength, 64);
});

test('re-encodes the header byte for byte', () => {
  const p = Ipv4Packet.parse(ECHO, 0);
  const out = Buffer.alloc(20);
  writeIpv4Header(out, 0, {
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    payloadLength: p.payloadLength,
    ttl: p.ttl,
    identification: p.identification,
    dontFragment: p.dontFragment,
  });
  assert.deepEqual(out, ECHO.subarray(0, 20));
});

test('every truncation is a typed parse error', () => {
  for (let n = 0; n < ECHO.length; n++) {
    assert.throws(() => Ipv4Packet.parse(ECHO.subarray(0, n), 0), ParseError);
  }
});

test('a corrupted header checksum is rejected', () => {
  const bad = Buffer.from(ECHO);
  bad[8] = 63;
  assert.throws(() => Ipv4Packet.parse(bad, 0), { code: 'ipv4.bad-checksum' });
});

test('checksum of a header with its checksum is zero', () => {
  assert.equal(checksum(ECHO, 0, 20), 0);
  assert.equal(parseIpv4('10.0.2.2'), 0x0a000202);
});
