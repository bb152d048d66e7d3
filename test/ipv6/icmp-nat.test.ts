/**
 * ICMPv6 echo to other hosts through a fake ping-socket layer on a
 * virtual clock: the request goes out with the hop limit less one, the
 * reply comes back with the guest's identifier and a valid checksum, host
 * errors reach the guest quoting its request, idle flows close, and a
 * forbidden ping socket is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { icmpv6Route } from '../../src/operators/icmpv6.js';
import { ipv6ToString, parseIpv6 } from '../../src/protocols/address.js';
import { ETH_HEADER_LENGTH } from '../../src/protocols/ethernet.js';
import type { Ipv6Packet } from '../../src/protocols/ipv6.js';
import {
  ErrorOrigin,
  PingSocketError,
  type PingMessage,
  type PingSocket,
  type PingSockets,
} from '../../src/streams/ping.js';
import { rig } from '../operators/guest-frames.js';
import { GUEST6, config6, echo6, icmp6, ip6 } from './guest6.js';

const FAR = parseIpv6('2001:db8::99');

class FakeSocket implements PingSocket {
  readonly family = 6 as const;
  readonly messages$ = new Subject<PingMessage>();
  readonly sent: { address: Uint8Array; message: Buffer; ttl: number }[] = [];
  closed = false;

  send(address: Uint8Array, message: Uint8Array, ttl: number): number {
    this.sent.push({ address: Uint8Array.from(address), message: Buffer.from(message), ttl });
    return message.length;
  }

  close(): void {
    this.closed = true;
    this.messages$.complete();
  }

  /** The host's answer to the last request, with the kernel's identifier 0xbeef. */
  reply(): void {
    const data = Buffer.from(this.sent.at(-1)!.message);
    data[0] = 129;
    data.writeUInt16BE(0xbeef, 4);
    this.messages$.next(message('reply', data, FAR));
  }
}

function message(
  kind: 'reply' | 'error',
  data: Uint8Array,
  from: Uint8Array,
  more = {},
): PingMessage {
  const base = { kind, data, from, ttl: 60, origin: 0, type: 0, code: 0, info: 0, errno: 0 };
  return { ...base, ...more };
}

function setup(forbidden = false) {
  const sockets: FakeSocket[] = [];
  const fake: PingSockets = {
    open: () => {
      if (forbidden) throw new PingSocketError('forbidden', 13, 'ping_group_range is "1 0"');
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
  };
  const r = rig<Ipv6Packet, Buffer>((ctx) => icmpv6Route(ctx), config6(), { pingSockets: fake });
  r.advanceTo(0);
  r.out.length = 0;
  return { ...r, sockets };
}

test('echo to another host goes out on a ping socket, and its reply comes back with the guest identifier', () => {
  const t = setup();
  const request = echo6(Buffer.from('far away'), { dst: FAR, ident: 0x1234, seq: 3 });
  t.input.next(ip6(request));
  assert.equal(t.sockets.length, 1);
  const sent = t.sockets[0]!.sent[0]!;
  assert.equal(ipv6ToString(sent.address), '2001:db8::99');
  assert.equal(sent.ttl, 63);
  assert.deepEqual(sent.message, request.subarray(ETH_HEADER_LENGTH + 40));
  t.sockets[0]!.reply();
  assert.equal(t.out.length, 1);
  const { ip, icmp } = icmp6(t.out[0]!);
  assert.equal(ipv6ToString(ip.src), '2001:db8::99');
  assert.equal(ipv6ToString(ip.dst), ipv6ToString(GUEST6));
  assert.deepEqual([icmp.type, icmp.identifier, icmp.sequence], [129, 0x1234, 3]);
  assert.equal(Buffer.from(icmp.body).toString(), 'far away');
  assert.equal(t.counter('icmpv6.nat.replied'), 1);
});

test('a host error about a request reaches the guest from the reporter, quoting the request', () => {
  const t = setup();
  t.input.next(ip6(echo6(Buffer.from('x'), { dst: FAR, seq: 5 })));
  const quotedIcmp = Buffer.from(t.sockets[0]!.sent[0]!.message.subarray(0, 8));
  const router = parseIpv6('2001:db8::1');
  t.sockets[0]!.messages$.next(
    message('error', quotedIcmp, router, { origin: ErrorOrigin.Icmp6, type: 3, code: 0 }),
  );
  const { ip, icmp } = icmp6(t.out[0]!);
  assert.deepEqual([icmp.type, icmp.code], [3, 0]);
  assert.equal(ipv6ToString(ip.src), '2001:db8::1');
  assert.equal(ipv6ToString(icmp.body, 24), '2001:db8::99', 'the quoted request');
  assert.equal(Buffer.from(icmp.body).readUInt16BE(46), 5, 'its sequence number');
});

test('hop limit 1 gets time exceeded from the gateway; martians get no route', () => {
  const t = setup();
  t.input.next(ip6(echo6(Buffer.from('x'), { dst: FAR, hopLimit: 1 })));
  t.input.next(ip6(echo6(Buffer.from('x'), { dst: parseIpv6('fd00::77') })));
  assert.equal(t.sockets.length, 0);
  const [a, b] = t.out.map((f) => icmp6(f));
  assert.deepEqual([a!.icmp.type, b!.icmp.type, b!.icmp.code], [3, 1, 0]);
  assert.equal(ipv6ToString(a!.ip.src), 'fd00::2');
});

test('idle flows close after 30 to 45 s; a forbidden ping socket is counted', () => {
  const t = setup();
  t.input.next(ip6(echo6(Buffer.from('x'), { dst: FAR })));
  t.advanceTo(29_000);
  assert.equal(t.sockets[0]!.closed, false);
  t.advanceTo(45_000);
  assert.equal(t.sockets[0]!.closed, true);

  const f = setup(true);
  f.input.next(ip6(echo6(Buffer.from('x'), { dst: FAR })));
  f.input.next(ip6(echo6(Buffer.from('x'), { dst: FAR })));
  assert.equal(f.counter('icmpv6.echo.no-ping-socket'), 2);
  assert.equal(f.out.length, 0);
});
