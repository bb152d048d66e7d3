import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkEthernet,
  etherType,
  ethDestination,
  ethSource,
  writeEthernet,
  EtherType,
} from '../../src/protocols/ethernet.js';
import { Ipv4Packet } from '../../src/protocols/ipv4.js';
import { ParseError } from '../../src/protocols/errors.js';
import { macToString, parseMac } from '../../src/protocols/address.js';
import { numRuns } from '../property/runs.js';

// A broadcast ARP request header as Linux sends it from the guest.
const HEADER = Buffer.from('ffffffffffff' + '020000000001' + '0806', 'hex');

test('decodes and re-encodes an Ethernet header byte for byte', () => {
  checkEthernet(HEADER);
  assert.equal(etherType(HEADER), EtherType.ARP);
  assert.equal(macToString(ethDestination(HEADER)), 'ff:ff:ff:ff:ff:ff');
  assert.equal(macToString(ethSource(HEADER)), '02:00:00:00:00:01');
  const out = Buffer.alloc(14);
  const next = writeEthernet(out, 0, ethDestination(HEADER), parseMac('02:00:00:00:00:01'), 0x0806);
  assert.equal(next, 14);
  assert.deepEqual(out, HEADER);
});

test('a header cut short is a typed parse error', () => {
  for (let n = 0; n < 14; n++) {
    assert.throws(() => checkEthernet(HEADER.subarray(0, n)), { code: 'ethernet.truncated' });
  }
});

test('arbitrary bytes never throw anything but ParseError (Ethernet, IPv4)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(40), (bytes, offset) => {
      for (const parse of [
        () => checkEthernet(bytes),
        () => Ipv4Packet.parse(bytes, offset),
        () => Ipv4Packet.parse(bytes, 0).payload,
      ]) {
        try {
          parse();
        } catch (e) {
          assert.ok(e instanceof ParseError, String(e));
        }
      }
    }),
    { numRuns: numRuns(2000) },
  );
});
