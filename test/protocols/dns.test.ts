import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DnsHeader,
  DnsTcpDeframer,
  DnsType,
  encodeDnsQuery,
  encodeDnsResponse,
  encodeName,
  frameDnsTcp,
  parseQuestion,
  readName,
  setDnsId,
} from '../../src/protocols/dns.js';
import { ParseError } from '../../src/protocols/errors.js';
import { parseIpv4 } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

// Made offline with Python; tshark decodes them as in the comments.
// Standard query 0xabcd: example.com A IN, RD.
const QUERY_A = hex('abcd01000001000000000000076578616d706c6503636f6d0000010001');
// Response: example.com A 192.0.2.1 and 192.0.2.2, TTL 3600, owners compressed.
const RESPONSE_A = hex(
  'abcd81800001000200000000076578616d706c6503636f6d0000010001' +
    'c00c0001000100000e100004c0000201c00c0001000100000e100004c0000202',
);
// Standard query 0x1234: www.example.org AAAA IN, RD.
const QUERY_AAAA = hex('12340100000100000000000003777777076578616d706c65036f726700001c0001');
// Response: www.example.org AAAA 2001:db8::1, TTL 300.
const RESPONSE_AAAA = hex(
  '12348180000100010000000003777777076578616d706c65036f726700001c0001' +
    'c00c001c00010000012c001020010db8000000000000000000000001',
);
// Response: No such name.
const NXDOMAIN = hex('12348183000100000000000003777777076578616d706c65036f726700001c0001');

test('reads the header of a query and of a response', () => {
  const q = DnsHeader.parse(QUERY_A);
  assert.deepEqual(
    [q.id, q.qr, q.opcode, q.rd, q.ra, q.tc, q.aa, q.rcode, q.qdcount, q.ancount],
    [0xabcd, false, 0, true, false, false, false, 0, 1, 0],
  );
  const r = DnsHeader.parse(RESPONSE_A);
  assert.deepEqual(
    [r.flags, r.qr, r.ra, r.ancount, r.nscount, r.arcount],
    [0x8180, true, true, 2, 0, 0],
  );
  assert.equal(DnsHeader.parse(NXDOMAIN).rcode, 3);
});

test('reads the question', () => {
  assert.deepEqual(parseQuestion(QUERY_A), { name: 'example.com', type: 1, class: 1, end: 29 });
  const q = parseQuestion(QUERY_AAAA);
  assert.deepEqual([q.name, q.type, q.class], ['www.example.org', DnsType.AAAA, 1]);
  const inside = new Uint8Array(40);
  inside.set(QUERY_A, 5);
  assert.equal(parseQuestion(inside, 5, QUERY_A.length).end, 5 + 29);
});

test('rewrites the id in place and nothing else', () => {
  const b = Uint8Array.from(QUERY_A);
  setDnsId(b, 0, 0x0102);
  assert.equal(DnsHeader.parse(b).id, 0x0102);
  assert.deepEqual(b.subarray(2), QUERY_A.subarray(2));
});

test('encodes queries byte for byte', () => {
  assert.deepEqual(encodeDnsQuery(0xabcd, 'example.com', DnsType.A), QUERY_A);
  assert.deepEqual(encodeDnsQuery(0x1234, 'www.example.org.', DnsType.AAAA), QUERY_AAAA);
});

test('encodes A, AAAA and error responses byte for byte', () => {
  const a = encodeDnsResponse({ id: 0xabcd, rd: true, question: parseQuestion(QUERY_A) }, [
    { type: 'A', address: parseIpv4('192.0.2.1'), ttl: 3600 },
    { type: 'A', address: parseIpv4('192.0.2.2'), ttl: 3600 },
  ]);
  assert.deepEqual(a, RESPONSE_A);
  const q6 = { id: 0x1234, rd: true, question: parseQuestion(QUERY_AAAA) };
  const address = hex('20010db8000000000000000000000001');
  assert.deepEqual(encodeDnsResponse(q6, [{ type: 'AAAA', address, ttl: 300 }]), RESPONSE_AAAA);
  assert.deepEqual(encodeDnsResponse(q6, [], 3), NXDOMAIN);
});

test('follows compression pointers', () => {
  // A response whose answer owner is a pointer to the question name, and
  // a name "mail" + pointer to offset 20 ("example.com").
  const r = RESPONSE_A;
  assert.deepEqual(readName(r, 0, 29, r.length), { name: 'example.com', end: 31 });
  const msg = new Uint8Array([...r, 4, ...Buffer.from('mail'), 0xc0, 12]);
  assert.deepEqual(readName(msg, 0, r.length, msg.length), {
    name: 'mail.example.com',
    end: msg.length,
  });
});

test('pointer loops, forward pointers and reserved labels are refused', () => {
  const head = hex('000001000001000000000000');
  const withName = (...name: number[]) => new Uint8Array([...head, ...name, 0, 1, 0, 1]);
  assert.throws(() => parseQuestion(withName(0xc0, 12)), { code: 'dns.bad-pointer' });
  assert.throws(() => parseQuestion(withName(0xc0, 14)), { code: 'dns.bad-pointer' });
  assert.throws(() => parseQuestion(withName(1, 0x61, 0xc0, 12)), { code: 'dns.bad-pointer' });
  assert.throws(() => parseQuestion(withName(0x40, 0x61)), { code: 'dns.bad-label' });
  assert.throws(() => parseQuestion(withName(0x80, 0x61)), { code: 'dns.bad-label' });
  // Two names pointing at each other: 12: "a" -> 16, 16: "b" -> 12.
  const mutual = new Uint8Array([...head, 1, 0x61, 0xc0, 16, 1, 0x62, 0xc0, 12, 0, 1, 0, 1]);
  assert.throws(() => parseQuestion(mutual), { code: 'dns.bad-pointer' });
  const loop = new Uint8Array([...r(20), 1, 0x61, 0xc0, 20]);
  assert.throws(() => readName(loop, 0, 20, loop.length), { code: 'dns.bad-pointer' });
  // A chain that goes back each time is fine: 12 "a", 15 "b" -> 12, 19 "c" -> 15.
  const chain = new Uint8Array([...head, 1, 0x61, 0, 1, 0x62, 0xc0, 12, 1, 0x63, 0xc0, 15]);
  assert.equal(readName(chain, 0, 19, chain.length).name, 'c.b.a');
});

function r(n: number): number[] {
  return new Array<number>(n).fill(0);
}

test('names longer than 255 bytes are refused, through pointers too', () => {
  const label = [63, ...new Array<number>(63).fill(0x61)];
  const four = [...label, ...label, ...label, ...label];
  assert.throws(() => readName(new Uint8Array([...four, 0]), 0, 0, 257), {
    code: 'dns.name-too-long',
  });
  const three = [...label, ...label, ...label, 0];
  const ok = new Uint8Array([...three, ...label, 0xc0, 0]);
  assert.throws(() => readName(ok, 0, three.length, ok.length), { code: 'dns.name-too-long' });
  const almost = new Uint8Array([...label, ...label, ...label, 61, ...r(61).fill(0x62), 0]);
  assert.equal(readName(almost, 0, 0, almost.length).name.length, 63 * 3 + 61 + 3);
  assert.throws(() => encodeName('a'.repeat(64)), { code: 'dns.bad-name' });
  assert.throws(() => encodeName('a..b'), { code: 'dns.bad-name' });
  assert.throws(() => encodeName(Array(5).fill('a'.repeat(63)).join('.')), {
    code: 'dns.bad-name',
  });
});

test('odd bytes in names are escaped, and escapes encode back', () => {
  const name = new Uint8Array([3, 0x61, 0x2e, 0x62, 2, 0x5c, 0x20, 1, 0xff, 0]);
  const text = readName(name, 0, 0, name.length).name;
  assert.equal(text, 'a\\.b.\\\\\\032.\\255');
  assert.deepEqual(encodeName(text), name);
  assert.deepEqual(encodeName('.'), Uint8Array.of(0));
  assert.equal(readName(Uint8Array.of(0), 0, 0, 1).name, '.');
});

test('every truncation is a typed parse error', () => {
  for (const m of [QUERY_A, RESPONSE_AAAA]) {
    for (let n = 0; n < 33; n++) {
      if (n >= m.length) break;
      assert.throws(() => parseQuestion(m.subarray(0, n)), ParseError);
      assert.throws(() => parseQuestion(m, 0, n), ParseError);
    }
  }
  for (let n = 0; n < 12; n++) assert.throws(() => DnsHeader.parse(QUERY_A, 0, n), ParseError);
  assert.throws(() => parseQuestion(QUERY_A, 0, 40), { code: 'dns.truncated' });
  const noQuestion = Uint8Array.from(QUERY_A);
  noQuestion[5] = 0;
  assert.throws(() => parseQuestion(noQuestion), { code: 'dns.no-question' });
});

test('TCP framing: prefix, and a deframer that reassembles across chunks', () => {
  const framed = frameDnsTcp(QUERY_A);
  assert.deepEqual(framed.subarray(0, 2), Uint8Array.of(0, 29));
  const stream = new Uint8Array([
    ...framed,
    ...frameDnsTcp(RESPONSE_AAAA),
    ...frameDnsTcp(new Uint8Array(0)),
  ]);
  for (const cut of [1, 2, 3, 30, 31, 32, 50, stream.length]) {
    const d = new DnsTcpDeframer();
    const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
    assert.deepEqual(got, [QUERY_A, RESPONSE_AAAA, new Uint8Array(0)]);
    assert.equal(d.buffered, 0);
  }
  const d = new DnsTcpDeframer();
  const all: Uint8Array[] = [];
  for (const b of stream) all.push(...d.push(Uint8Array.of(b)));
  assert.deepEqual(all, [QUERY_A, RESPONSE_AAAA, new Uint8Array(0)]);
  assert.deepEqual(d.push(Uint8Array.of(0x01)), []);
  assert.equal(d.buffered, 1);
  assert.throws(() => frameDnsTcp(new Uint8Array(65536)), { code: 'dns.tcp.too-long' });
});
