import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ArpPacket,
  ArpOperation,
  ARP_LENGTH,
  writeArp,
  writeArpReply,
} from '../../src/protocols/arp.js';
import { ParseError } from '../../src/protocols/errors.js';
import { parseIpv4, parseMac, macToString, ipv4ToString } from '../../src/protocols/address.js';

// Made offline with Python, decoded by tshark as shown in the comments.
// Request: who has 10.0.2.2? tell 10.0.2.100 (02:00:00:00:00:01), padded
// to the 60-byte Ethernet minimum as Linux sends it.
const REQUEST = Buffer.from(
  '00010800060400010200000000010a0002640000000000000a000202' + '00'.repeat(18),
  'hex',
);
// Reply: 10.0.2.2 is at 52:55:0a:00:02:02.
const REPLY = Buffer.from('000108000604000252550a0002020a0002020200000000010a000264', 'hex');
const GATEWAY_MAC = parseMac('52:55:0a:00:02:02');

test('parses a request', () => {
  const p = ArpPacket.parse(REQUEST, 0);
  assert.equal(p.operation, ArpOperation.Request);
  assert.equal(macToString(p.senderMac), '02:00:00:00:00:01');
  assert.equal(ipv4ToString(p.senderIp), '10.0.2.100');
  assert.equal(macToString(p.targetMac), '00:00:00:00:00:00');
  assert.equal(ipv4ToString(p.targetIp), '10.0.2.2');
});

test('re-encodes the request byte for byte', () => {
  const p = ArpPacket.parse(REQUEST, 0);
  const out = Buffer.alloc(ARP_LENGTH);
  const end = writeArp(out, 0, {
    operation: p.operation,
    senderMac: p.senderMac,
    senderIp: p.senderIp,
    targetMac: p.targetMac,
    targetIp: p.targetIp,
  });
  assert.equal(end, ARP_LENGTH);
  assert.deepEqual(out, REQUEST.subarray(0, ARP_LENGTH));
});

test('answers the request byte for byte, also in place', () => {
  const out = Buffer.alloc(40);
  assert.equal(writeArpReply(out, 6, ArpPacket.parse(REQUEST, 0), GATEWAY_MAC), 6 + 28);
  assert.deepEqual(out.subarray(6, 34), REPLY);

  const frame = Buffer.concat([Buffer.alloc(14), REQUEST]);
  writeArpReply(frame, 14, ArpPacket.parse(frame, 14), GATEWAY_MAC);
  assert.deepEqual(frame.subarray(14, 42), REPLY);
  const r = ArpPacket.parse(frame, 14);
  assert.equal(r.operation, ArpOperation.Reply);
  assert.equal(r.targetIp, parseIpv4('10.0.2.100'));
});

test('every truncation is a typed parse error', () => {
  for (let n = 0; n < ARP_LENGTH; n++) {
    assert.throws(() => ArpPacket.parse(REQUEST.subarray(0, n), 0), { code: 'arp.truncated' });
  }
  assert.throws(() => ArpPacket.parse(REQUEST, 33), { code: 'arp.truncated' });
});

test('anything but Ethernet/IPv4 request or reply is refused with its own code', () => {
  const cases: Array<[number, number, string]> = [
    [1, 6, 'arp.bad-hardware'],
    [3, 0x86, 'arp.bad-protocol'],
    [4, 8, 'arp.bad-lengths'],
    [5, 16, 'arp.bad-lengths'],
    [7, 3, 'arp.bad-operation'],
    [6, 1, 'arp.bad-operation'],
  ];
  for (const [at, value, code] of cases) {
    const bad = Buffer.from(REPLY);
    bad[at] = value;
    assert.throws(
      () => ArpPacket.parse(bad),
      (e) => e instanceof ParseError && e.code === code,
    );
  }
});
