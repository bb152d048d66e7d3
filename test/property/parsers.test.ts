/**
 * "Arbitrary bytes never throw anything but ParseError", for every parser
 * in src/protocols. Each parser gets random bytes, and random bytes grafted
 * onto a valid prefix so that the checks past the first are reached too.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import { ParseError } from '../../src/protocols/errors.js';
import { Icmpv4Message } from '../../src/protocols/icmpv4.js';
import { ArpPacket } from '../../src/protocols/arp.js';
import { UdpDatagram } from '../../src/protocols/udp.js';
import { parseDhcp } from '../../src/protocols/dhcp.js';
import { DnsHeader, parseQuestion, readName } from '../../src/protocols/dns.js';
import { Ipv6Packet, Ipv6Reassembler } from '../../src/protocols/ipv6.js';
import { Icmpv6Message, writeIcmpv6 } from '../../src/protocols/icmpv6.js';
import {
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterAdvertisement,
  parseRouterSolicitation,
} from '../../src/protocols/ndp.js';
import { Dhcpv6InfoServer, parseDhcpv6 } from '../../src/protocols/dhcpv6.js';
import { parseIpv6 } from '../../src/protocols/address.js';
import { Ipv4Packet } from '../../src/protocols/ipv4.js';
import { Ipv4Reassembler, fragmentIpv4 } from '../../src/protocols/fragments.js';

type Parser = (bytes: Uint8Array) => unknown;

function onlyParseErrors(parse: Parser, prefixes: Uint8Array[] = []): void {
  const bytes = fc.uint8Array({ maxLength: 600 });
  const grafted = fc
    .tuple(fc.constantFrom(new Uint8Array(0), ...prefixes), fc.nat(), bytes)
    .map(([prefix, cut, tail]) => {
      const keep = prefix.subarray(0, cut % (prefix.length + 1));
      const out = new Uint8Array(keep.length + tail.length);
      out.set(keep);
      out.set(tail, keep.length);
      return out;
    });
  fc.assert(
    fc.property(fc.oneof(bytes, grafted), (b) => {
      try {
        parse(b);
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
      }
    }),
    { numRuns: numRuns(400) },
  );
}

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

test('icmpv4: arbitrary bytes only ever raise ParseError', () => {
  onlyParseErrors((b) => Icmpv4Message.parse(b), [hex('0800b8f1000100016b0b5f67')]);
  onlyParseErrors((b) => Icmpv4Message.parse(b, 3, b.length - 10));
});

test('arp: arbitrary bytes only ever raise ParseError', () => {
  onlyParseErrors((b) => ArpPacket.parse(b), [hex('000108000604000252550a0002020a000202')]);
});

test('udp: arbitrary bytes only ever raise ParseError', () => {
  const prefix = hex('952500350025d6a7abcd0100');
  onlyParseErrors((b) => UdpDatagram.parse(b, 0, b.length), [prefix]);
  onlyParseErrors((b) => UdpDatagram.parse(b, 0, b.length, true), [prefix]);
  onlyParseErrors((b) => UdpDatagram.parseV4(b, 0, b.length - 3, 0x0a000264, 0x0a000203));
  onlyParseErrors((b) => UdpDatagram.parseV6(b, 1, b.length, new Uint8Array(16), b), [prefix]);
});

test('dhcp: arbitrary bytes only ever raise ParseError', () => {
  const head = new Uint8Array(240);
  head.set([1, 1, 6, 0]);
  head.set([0x63, 0x82, 0x53, 0x63], 236);
  const withOptions = new Uint8Array([...head, 53, 1, 1, 52, 1, 3, 61, 7, 1, 2, 3]);
  onlyParseErrors((b) => parseDhcp(b), [head, withOptions]);
});

test('dns: arbitrary bytes only ever raise ParseError', () => {
  const query = hex('abcd01000001000000000000076578616d706c6503636f6d0000010001');
  const pointers = hex('000001000001000000000000016103c00c01620c');
  onlyParseErrors((b) => parseQuestion(b), [query, pointers]);
  onlyParseErrors((b) => DnsHeader.parse(b, 2, b.length - 2).rcode, [query]);
  onlyParseErrors((b) => readName(b, 0, b.length >> 1, b.length), [pointers]);
});

const GUEST6 = Uint8Array.from(Buffer.from('fd000000000000000000000000000100', 'hex'));
const GATEWAY6 = Uint8Array.from(Buffer.from('fd000000000000000000000000000002', 'hex'));

test('ipv6: arbitrary bytes only ever raise ParseError', () => {
  const head = hex(
    '60000000001c0040fd000000000000000000000000000100fd000000000000000000000000000002',
  );
  const ext = hex('3c0005020000010011000104000000009c401e61000c856a61626364');
  const frag = hex(
    '6000000000382c40fd000000000000000000000000000002fd00000000000000000000000000010011000001deadbeef',
  );
  onlyParseErrors((b) => Ipv6Packet.parse(b), [new Uint8Array([...head, ...ext]), frag]);
  const r = new Ipv6Reassembler({ maxBytes: 4096, maxDatagrams: 4 });
  let now = 0;
  onlyParseErrors((b) => r.add(Ipv6Packet.parse(b), (now += 1000)), [frag]);
});

test('icmpv6 and ndp: arbitrary bytes only ever raise ParseError', () => {
  const parseAll = (b: Uint8Array) => {
    // Sign the bytes as an ICMPv6 message so the NDP checks are reached.
    const m = new Uint8Array(Math.max(b.length, 8));
    m.set(b);
    writeIcmpv6(m, 0, m[0]!, m[1]!, 0, m.subarray(8), GUEST6, GATEWAY6);
    const msg = Icmpv6Message.parse(m, 0, m.length, GUEST6, GATEWAY6);
    for (const f of [
      () => parseNeighborSolicitation(msg, 255, GUEST6, GATEWAY6),
      () => parseNeighborAdvertisement(msg, 255, GATEWAY6),
      () => parseRouterSolicitation(msg, 255, new Uint8Array(16)),
      () => parseRouterAdvertisement(msg, 255, parseIpv6('fe80::2')),
    ]) {
      try {
        f();
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
      }
    }
  };
  const ns = hex('87007d1700000000fd0000000000000000000000000000020101020000000001');
  const ra = hex('8600e2d2404007080000000000000000010152550a00020205010000000005dc030440c0');
  onlyParseErrors(parseAll, [ns, ra]);
  onlyParseErrors((b) => Icmpv6Message.parse(b, 0, b.length, GUEST6, GATEWAY6));
  onlyParseErrors((b) => parseIpv6(new TextDecoder().decode(b)), [hex('666430303a3a')]);
});

test('dhcpv6: arbitrary bytes only ever raise ParseError', () => {
  const request = hex('0b1234560008000200000001000a000300010200000000010006000400170018');
  const server = new Dhcpv6InfoServer({ serverDuid: hex('000300010200000000ff'), dns: [GATEWAY6] });
  onlyParseErrors((b) => server.handle(parseDhcpv6(b)), [request]);
});

test('ipv4 fragments: arbitrary packets into the reassembler and fragmenter raise only ParseError', () => {
  const r = new Ipv4Reassembler({ maxBytes: 2048, maxDatagrams: 3 });
  let now = 0;
  const header = hex('4500004442422000401100020a0002020a000264');
  onlyParseErrors(
    (b) => {
      const p = Ipv4Packet.parse(b, 0);
      r.add(p, (now += 3000));
      fragmentIpv4(p, 20 + (b[0]! & 0x3f) * 8);
    },
    [header],
  );
});
