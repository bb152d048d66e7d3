import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDnsServer, resolvConfNameservers } from '../../src/protocols/resolver.js';
import { ParseError } from '../../src/protocols/errors.js';
import {
  DnsHeader,
  encodeDnsError,
  encodeDnsQuery,
  parseQuestion,
} from '../../src/protocols/dns.js';

test('resolv.conf: nameservers in order, comments and junk skipped, zones kept', () => {
  const text = [
    '# generated',
    'search example.org',
    'nameserver 203.0.113.1 ; trailing comment',
    '  nameserver\t2001:db8::53',
    'nameserver not-an-address',
    '#nameserver 198.51.100.9',
    'nameserver fe80::1%eth0',
    'options edns0',
  ].join('\n');
  assert.deepEqual(resolvConfNameservers(text), [
    { address: '203.0.113.1', port: 53, family: 4 },
    { address: '2001:db8::53', port: 53, family: 6 },
    { address: 'fe80::1%eth0', port: 53, family: 6 },
  ]);
  assert.deepEqual(resolvConfNameservers(''), []);
});

test('--dns-upstream forms: ADDR, ADDR:PORT, [ADDR6], [ADDR6]:PORT, bare ADDR6', () => {
  assert.deepEqual(parseDnsServer('198.51.100.1'), {
    address: '198.51.100.1',
    port: 53,
    family: 4,
  });
  assert.deepEqual(parseDnsServer('198.51.100.1:5353').port, 5353);
  assert.deepEqual(parseDnsServer('[2001:db8::1]:5353'), {
    address: '2001:db8::1',
    port: 5353,
    family: 6,
  });
  assert.deepEqual(parseDnsServer('[::1]').port, 53);
  assert.deepEqual(parseDnsServer('::1'), { address: '::1', port: 53, family: 6 });
  for (const bad of ['', 'example.com', '1.2.3.4:0', '1.2.3.4:70000', '[1.2.3.4]:53', '1.2.3']) {
    assert.throws(() => parseDnsServer(bad), ParseError, bad);
  }
});

test('encodeDnsError: header and question echoed, QR RA and the rcode set, no records', () => {
  const query = encodeDnsQuery(0xbeef, 'host.example', 28);
  const withExtra = new Uint8Array(query.length + 11);
  withExtra.set(query);
  withExtra[11] = 1; // ARCOUNT 1: an OPT record follows, and is not echoed
  const reply = encodeDnsError(withExtra, 2);
  const h = DnsHeader.parse(reply);
  assert.equal(h.id, 0xbeef);
  assert.ok(h.qr && h.ra && h.rd);
  assert.equal(h.rcode, 2);
  assert.deepEqual([h.qdcount, h.ancount, h.nscount, h.arcount], [1, 0, 0, 0]);
  assert.equal(reply.length, query.length);
  assert.equal(parseQuestion(reply).name, 'host.example');
});
