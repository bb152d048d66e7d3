import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import { UdpDatagram, writeUdpV4, writeUdpV6 } from '../../src/protocols/udp.js';

const port = fc.integer({ min: 0, max: 0xffff });
const ipv4 = fc.integer({ min: 0, max: 0xffffffff });
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const payload = fc.uint8Array({ maxLength: 1500, size: 'max' });

test('UDP over IPv4: write then parse gives back ports and payload; any other bit flip is caught', () => {
  fc.assert(
    fc.property(ipv4, ipv4, port, port, payload, fc.nat(), (src, dst, sp, dp, data, flip) => {
      const buf = new Uint8Array(8 + data.length);
      writeUdpV4(buf, 0, src, dst, sp, dp, data);
      const d = UdpDatagram.parseV4(buf, 0, buf.length, src, dst);
      assert.deepEqual([d.srcPort, d.dstPort], [sp, dp]);
      assert.deepEqual(d.payload, data);
      const bit = flip % (buf.length * 8);
      buf[bit >> 3]! ^= 1 << (bit & 7);
      // A checksum flipped to 0 reads as "no checksum": UDPv4 cannot tell.
      if (buf[6] === 0 && buf[7] === 0) return;
      assert.throws(() => UdpDatagram.parseV4(buf, 0, buf.length, src, dst));
    }),
    { numRuns: numRuns(300) },
  );
});

test('UDP over IPv6: write then parse gives back ports and payload', () => {
  fc.assert(
    fc.property(ipv6, ipv6, port, port, payload, (src, dst, sp, dp, data) => {
      const buf = new Uint8Array(8 + data.length);
      writeUdpV6(buf, 0, src, dst, sp, dp, data);
      const d = UdpDatagram.parseV6(buf, 0, buf.length, src, dst);
      assert.deepEqual([d.srcPort, d.dstPort], [sp, dp]);
      assert.deepEqual(d.payload, data);
    }),
    { numRuns: numRuns(200) },
  );
});
