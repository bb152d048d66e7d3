import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Dhcpv6InfoServer,
  Dhcpv6MessageType,
  Dhcpv6Option,
  duidLl,
  encodeDhcpv6,
  parseDhcpv6,
} from '../../src/protocols/dhcpv6.js';
import { ParseError } from '../../src/protocols/errors.js';
import { ipv6ToString, parseIpv6, parseMac } from '../../src/protocols/address.js';

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

// Made offline with Python; tshark decodes them as described.
// INFORMATION-REQUEST, transaction 0x123456: elapsed time 0, client id
// DUID-LL 02:00:00:00:00:01, option request 23 (DNS) and 24 (domain list).
const INFO_REQUEST = hex('0b1234560008000200000001000a000300010200000000010006000400170018');
// REPLY: server id DUID-LL 52:55:0a:00:02:02, client id echoed, DNS fd00::3.
const REPLY = hex(
  '071234560002000a0003000152550a0002020001000a0003000102000000000100170010fd000000000000000000000000000003',
);
const SERVER_DUID = duidLl(parseMac('52:55:0a:00:02:02'));
const server = new Dhcpv6InfoServer({ serverDuid: SERVER_DUID, dns: [parseIpv6('fd00::3')] });

test('parses an INFORMATION-REQUEST', () => {
  const m = parseDhcpv6(INFO_REQUEST);
  assert.equal(m.type, Dhcpv6MessageType.InformationRequest);
  assert.equal(m.transactionId, 0x123456);
  assert.deepEqual(m.clientId, duidLl(parseMac('02:00:00:00:00:01')));
  assert.deepEqual(m.requestedOptions, [23, 24]);
  assert.equal(m.elapsedTime, 0);
  assert.equal(m.serverId, undefined);
  assert.equal(m.hasIa, false);
});

test('re-encodes both fixtures byte for byte', () => {
  assert.deepEqual(encodeDhcpv6(parseDhcpv6(INFO_REQUEST)), INFO_REQUEST);
  assert.deepEqual(encodeDhcpv6(parseDhcpv6(REPLY)), REPLY);
  assert.deepEqual(
    parseDhcpv6(REPLY).dnsServers.map((a) => ipv6ToString(a)),
    ['fd00::3'],
  );
});

test('answers the request with the DNS servers, byte for byte', () => {
  const r = server.handle(parseDhcpv6(INFO_REQUEST));
  assert.equal(r.kind, 'reply');
  if (r.kind === 'reply') assert.deepEqual(r.payload, REPLY);
});

test('without DNS servers or a client id, the reply has neither', () => {
  const bare = new Dhcpv6InfoServer({ serverDuid: SERVER_DUID, dns: [] });
  const request = encodeDhcpv6({ type: 11, transactionId: 7, options: [] });
  const r = bare.handle(parseDhcpv6(request));
  assert.equal(r.kind, 'reply');
  if (r.kind === 'reply') {
    assert.deepEqual(
      r.message.options.map(([c]) => c),
      [Dhcpv6Option.ServerId],
    );
    assert.equal(parseDhcpv6(r.payload).transactionId, 7);
  }
});

test('what a stateless server must not answer, it does not', () => {
  const ask = (type: number, options: Array<readonly [number, Uint8Array]> = []) => {
    const r = server.handle(parseDhcpv6(encodeDhcpv6({ type, transactionId: 1, options })));
    return r.kind === 'none' ? r.reason : 'reply';
  };
  assert.equal(ask(Dhcpv6MessageType.Solicit), 'dhcpv6.stateful-unsupported');
  assert.equal(ask(Dhcpv6MessageType.Request), 'dhcpv6.stateful-unsupported');
  assert.equal(ask(Dhcpv6MessageType.Reply), 'dhcpv6.not-client-message');
  assert.equal(
    ask(11, [[Dhcpv6Option.ServerId, duidLl(parseMac('02:00:00:00:00:09'))]]),
    'dhcpv6.other-server',
  );
  assert.equal(ask(11, [[Dhcpv6Option.ServerId, SERVER_DUID]]), 'reply');
  assert.equal(
    ask(11, [[Dhcpv6Option.IaNa, new Uint8Array(12)]]),
    'dhcpv6.ia-in-information-request',
  );
});

test('truncations and malformed options are typed parse errors', () => {
  for (let n = 0; n < INFO_REQUEST.length; n++) {
    const cut = INFO_REQUEST.subarray(0, n);
    if (n === 4 || n === 10 || n === 24) {
      assert.doesNotThrow(() => parseDhcpv6(cut), `option boundary at ${n}`);
    } else {
      assert.throws(() => parseDhcpv6(cut), ParseError, `${n}`);
    }
  }
  const mutate = (at: number, value: number) => {
    const b = Uint8Array.from(INFO_REQUEST);
    b[at] = value;
    return b;
  };
  assert.throws(() => parseDhcpv6(mutate(0, 12)), { code: 'dhcpv6.relay' });
  assert.throws(() => parseDhcpv6(mutate(7, 3)), { code: 'dhcpv6.truncated' });
  const oddOro = encodeDhcpv6({
    type: 11,
    transactionId: 1,
    options: [[6, Uint8Array.of(0, 23, 0)]],
  });
  assert.throws(() => parseDhcpv6(oddOro), { code: 'dhcpv6.bad-option' });
  const shortId = encodeDhcpv6({ type: 11, transactionId: 1, options: [[1, Uint8Array.of(0)]] });
  assert.throws(() => parseDhcpv6(shortId), { code: 'dhcpv6.bad-option' });
});
