/**
 * The DNS forwarder against a fake upstream: ids rewritten and restored,
 * concurrent queries with one id kept apart, timeouts on the virtual
 * clock, resolv.conf followed when it changes, SERVFAIL without upstream,
 * and --disable-dns leaving network+3 to the NAT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipe } from 'rxjs';
import { networkConfig, type NetworkConfig } from '../../src/config.js';
import { dnsService, type DnsForwarderOptions } from '../../src/operators/dns.js';
import { ipv4Input } from '../../src/operators/ipv4.js';
import { udpInput, udpNat } from '../../src/operators/udp.js';
import {
  DnsHeader,
  DnsType,
  encodeDnsQuery,
  encodeDnsResponse,
  parseQuestion,
} from '../../src/protocols/dns.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { fakeHost } from './fake-udp.js';
import { DNS, GUEST_IP, GUEST_MAC, ipOf, rig, udpFrame } from './guest-frames.js';

const DNS_MAC = Buffer.from([0x52, 0x55, 10, 0, 2, 3]);

function dnsRig(options: DnsForwarderOptions, flags = {}, outbound?: NetworkConfig['outbound']) {
  const host = fakeHost();
  const r = rig<Buffer, Buffer>(
    (ctx) =>
      pipe(
        ipv4Input(ctx),
        udpInput(
          ctx,
          [dnsService(ctx, { openSocket: host.open, ...options })],
          udpNat(ctx, { openSocket: host.open }),
        ),
      ),
    { ...networkConfig(undefined, 1500, flags), ...(outbound && { outbound }) },
  );
  return { ...r, host };
}

function query(id: number, name: string, srcPort = 33000): Buffer {
  return udpFrame(encodeDnsQuery(id, name, DnsType.A), {
    dst: DNS,
    dstPort: 53,
    srcPort,
  });
}

/** The upstream's answer to a query it received. */
function answerTo(sent: Uint8Array, address = 0xc6336401): Uint8Array {
  const h = DnsHeader.parse(sent);
  const question = parseQuestion(sent);
  return encodeDnsResponse({ id: h.id, rd: h.rd, question }, [{ type: 'A', address, ttl: 5 }]);
}

function guestAnswer(frame: Buffer) {
  const ip = ipOf(frame);
  const udp = UdpDatagram.parseV4(frame, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst);
  return { ip, udp, header: DnsHeader.parse(udp.payload), question: parseQuestion(udp.payload) };
}

test('a query to network+3 goes upstream under an id of ours; the answer comes back with the guest id', () => {
  const r = dnsRig({ upstream: '198.51.100.1:5353' });
  r.input.next(query(0x4242, 'example.test'));
  assert.equal(r.host.sockets.length, 1);
  const s = r.host.sockets[0]!;
  assert.deepEqual(s.target, { address: '198.51.100.1', port: 5353, family: 4 });
  const sent = s.sent[0]!;
  const original = encodeDnsQuery(0x4242, 'example.test', DnsType.A);
  assert.deepEqual(sent.subarray(2), Buffer.from(original.subarray(2)), 'all but the id as sent');

  s.reply(answerTo(sent));
  assert.equal(r.out.length, 1);
  const a = guestAnswer(r.out[0]!);
  assert.deepEqual(r.out[0]!.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.deepEqual(r.out[0]!.subarray(6, 12), DNS_MAC);
  assert.equal(a.ip.src, DNS);
  assert.equal(a.ip.dst, GUEST_IP);
  assert.equal(a.udp.srcPort, 53);
  assert.equal(a.udp.dstPort, 33000);
  assert.equal(a.header.id, 0x4242);
  assert.equal(a.header.ancount, 1);
  assert.equal(a.question.name, 'example.test');
  assert.equal(r.counter('dns.answered'), 1);
});

test('two guest queries with the same id are kept apart, whatever order the answers come in', () => {
  const r = dnsRig({ upstream: '198.51.100.1' });
  r.input.next(query(7, 'one.test', 40001));
  r.input.next(query(7, 'two.test', 40002));
  const s = r.host.sockets[0]!;
  assert.equal(r.host.sockets.length, 1, 'one upstream socket for all queries');
  assert.equal(s.target.port, 53);
  const [first, second] = s.sent;
  assert.notEqual(DnsHeader.parse(first!).id, DnsHeader.parse(second!).id);
  s.reply(answerTo(second!, 2));
  s.reply(answerTo(first!, 1));
  const answers = r.out.map(guestAnswer);
  assert.deepEqual(
    answers.map((a) => [a.udp.dstPort, a.question.name, a.header.id]),
    [
      [40002, 'two.test', 7],
      [40001, 'one.test', 7],
    ],
  );
});

test('an unanswered query times out after 5 s; a late or unknown answer is dropped', () => {
  const r = dnsRig({ upstream: '198.51.100.1' });
  r.input.next(query(1, 'slow.test'));
  const s = r.host.sockets[0]!;
  r.advanceTo(4_999);
  assert.equal(r.counter('dns.timeout'), 0);
  r.advanceTo(5_000);
  assert.equal(r.counter('dns.timeout'), 1);
  assert.equal(r.scheduler.actions.length, 0);
  s.reply(answerTo(s.sent[0]!));
  s.reply(Buffer.from('not dns'));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('dns.unexpected-answer'), 1);
  assert.equal(r.counter('dns.truncated'), 1);
});

test('the upstream follows the first nameserver of resolv.conf as the file changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxslirp-dns-'));
  try {
    const file = join(dir, 'resolv.conf');
    writeFileSync(file, '# test\nsearch example\nnameserver 203.0.113.7\nnameserver 203.0.113.9\n');
    const r = dnsRig({ resolvConf: file });
    r.input.next(query(1, 'a.test'));
    assert.equal(r.host.sockets[0]!.target.address, '203.0.113.7');
    writeFileSync(file, 'nameserver 203.0.113.8 # moved\n');
    r.input.next(query(2, 'b.test'));
    assert.equal(r.host.sockets.length, 1, 'looked at no more than once a second');
    r.advanceTo(1_000);
    r.input.next(query(3, 'c.test'));
    assert.equal(r.host.sockets.length, 2);
    assert.equal(r.host.sockets[1]!.target.address, '203.0.113.8');
    assert.equal(r.host.sockets[0]!.closed, true, 'the old upstream socket is closed');
    rmSync(file);
    r.advanceTo(2_000);
    r.input.next(query(4, 'd.test'));
    const a = guestAnswer(r.out[0]!);
    assert.equal(a.header.rcode, 2, 'SERVFAIL once resolv.conf is gone');
    assert.equal(a.header.id, 4);
    assert.equal(a.question.name, 'd.test');
    assert.equal(r.counter('dns.no-upstream'), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--disable-dns: network+3 port 53 is an ordinary address for the NAT', () => {
  const r = dnsRig({ upstream: '198.51.100.1' }, { disableDns: true });
  r.input.next(query(1, 'x.test'));
  assert.equal(r.host.sockets.length, 1);
  assert.deepEqual(r.host.sockets[0]!.target, { address: '10.0.2.3', port: 53, family: 4 });
  assert.equal(r.counter('dns.forwarded'), 0);
});

test('a response sent to network+3 is not forwarded; nor are queries past the limit', () => {
  const r = dnsRig({ upstream: '198.51.100.1', maxPending: 2 });
  const response = encodeDnsResponse(
    { id: 9, rd: true, question: parseQuestion(encodeDnsQuery(9, 'r.test', 1)) },
    [],
  );
  r.input.next(udpFrame(response, { dst: DNS, dstPort: 53 }));
  assert.equal(r.counter('dns.not-query'), 1);
  for (let i = 0; i < 3; i++) r.input.next(query(i, 'q.test', 50000 + i));
  assert.equal(r.counter('dns.pending-limit'), 1);
  assert.equal(r.host.sockets[0]!.sent.length, 2);
});

test('the upstream socket binds the --outbound-addr of its own family', () => {
  const outbound = { v4: '198.51.100.9', v6: '2001:db8::9' };
  const v4 = dnsRig({ upstream: '198.51.100.1:5353' }, {}, outbound);
  v4.input.next(query(1, 'a.test'));
  assert.deepEqual(v4.host.sockets[0]!.target, {
    address: '198.51.100.1',
    port: 5353,
    family: 4,
    localAddress: '198.51.100.9',
  });

  const v6 = dnsRig({ upstream: '[2001:db8::35]:53' }, {}, outbound);
  v6.input.next(query(2, 'b.test'));
  assert.deepEqual(v6.host.sockets[0]!.target, {
    address: '2001:db8::35',
    port: 53,
    family: 6,
    localAddress: '2001:db8::9',
  });

  const only4 = dnsRig({ upstream: '[2001:db8::35]:53' }, {}, { v4: '198.51.100.9' });
  only4.input.next(query(3, 'c.test'));
  assert.equal(only4.host.sockets[0]!.target.localAddress, undefined, 'no IPv4 source for IPv6');
});
