/**
 * The ICMP echo NAT against a fake ping-socket layer on a virtual clock:
 * requests go out per (identifier, destination) flow with the TTL less one,
 * replies come back with the guest's identifier, host ICMP errors come back
 * quoting the guest's own request, idle flows expire, the flow cap evicts
 * the least recently used, and a forbidden ping socket warns once while the
 * gateway still answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { networkConfig } from '../../src/config.js';
import { icmpEchoNat, icmpv4Route, type IcmpNatOptions } from '../../src/operators/icmp-nat.js';
import { slirpStack } from '../../src/operators/stack.js';
import { parseIpv4, readIpv4, writeIpv4 } from '../../src/protocols/address.js';
import { finish, sum } from '../../src/protocols/checksum.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../../src/protocols/ethernet.js';
import { Icmpv4Message, icmpv4ErrorLength, writeIcmpv4Error } from '../../src/protocols/icmpv4.js';
import { IpProtocol, Ipv4Packet, writeIpv4Header } from '../../src/protocols/ipv4.js';
import {
  ErrorOrigin,
  PingSocketError,
  type PingFamily,
  type PingMessage,
  type PingSocket,
  type PingSockets,
} from '../../src/streams/ping.js';
import type { Logger } from '../../src/util/log.js';
import { GATEWAY, GATEWAY_MAC, GUEST_IP, GUEST_MAC, ipOf, rig } from './guest-frames.js';

const FAR = parseIpv4('198.51.100.2');
const ROUTER = parseIpv4('198.51.100.1');

interface EchoOptions {
  dst?: number;
  ident?: number;
  seq?: number;
  ttl?: number;
  type?: number;
  payload?: Uint8Array;
}

/** An echo request frame from the guest (or another ICMP type with `type`). */
function echoFrame(o: EchoOptions = {}): Buffer {
  const payload = o.payload ?? Buffer.from('rxslirp ping payload 0123456789');
  const icmpLength = 8 + payload.length;
  const frame = Buffer.alloc(ETH_HEADER_LENGTH + 20 + icmpLength);
  writeEthernet(frame, 0, GATEWAY_MAC, GUEST_MAC, EtherType.IPv4);
  writeIpv4Header(frame, ETH_HEADER_LENGTH, {
    src: GUEST_IP,
    dst: o.dst ?? FAR,
    protocol: IpProtocol.ICMP,
    payloadLength: icmpLength,
    ttl: o.ttl ?? 64,
    identification: 0x4242,
  });
  const at = ETH_HEADER_LENGTH + 20;
  frame[at] = o.type ?? 8;
  frame.writeUInt16BE(o.ident ?? 0x1234, at + 4);
  frame.writeUInt16BE(o.seq ?? 1, at + 6);
  frame.set(payload, at + 8);
  frame.writeUInt16BE(finish(sum(frame, at, icmpLength)), at + 2);
  return frame;
}

interface Sent {
  address: number;
  message: Buffer;
  ttl: number;
}

/** One fake socket: records what is sent, lets the test deliver messages. */
class FakeSocket implements PingSocket {
  readonly incoming = new Subject<PingMessage>();
  readonly messages$ = this.incoming.asObservable();
  readonly sent: Sent[] = [];
  closed = false;
  sendResult = 0;

  constructor(
    readonly family: PingFamily,
    readonly kernelIdent: number,
  ) {}

  send(address: Uint8Array, message: Uint8Array, ttl: number): number {
    assert.equal(this.closed, false, 'send on a closed socket');
    this.sent.push({ address: readIpv4(address, 0), message: Buffer.from(message), ttl });
    return this.sendResult < 0 ? this.sendResult : message.length;
  }

  close(): void {
    this.closed = true;
    this.incoming.complete();
  }

  /** Delivers the echo reply the kernel would, for the last request sent. */
  reply(from = this.sent.at(-1)!.address): void {
    const m = Buffer.from(this.sent.at(-1)!.message);
    m[0] = 0;
    m.writeUInt16BE(this.kernelIdent, 4);
    m.writeUInt16BE(0, 2);
    m.writeUInt16BE(finish(sum(m, 0, m.length)), 2);
    this.incoming.next(message('reply', m, from));
  }

  /** Delivers an ICMP error about the request with sequence `seq`. */
  error(seq: number, fields: Partial<PingMessage>, reporter = ROUTER): void {
    const quoted = Buffer.alloc(8);
    quoted[0] = 8;
    quoted.writeUInt16BE(this.kernelIdent, 4);
    quoted.writeUInt16BE(seq, 6);
    this.incoming.next({ ...message('error', quoted, reporter), ...fields });
  }
}

function message(kind: 'reply' | 'error', data: Buffer, from: number): PingMessage {
  const address = new Uint8Array(4);
  writeIpv4(address, 0, from);
  return {
    kind,
    data,
    from: address,
    ttl: 64,
    origin: kind === 'error' ? ErrorOrigin.Icmp : 0,
    type: 0,
    code: 0,
    info: 0,
    errno: 0,
  };
}

class FakePingSockets implements PingSockets {
  readonly sockets: FakeSocket[] = [];
  forbidden = false;
  opens = 0;

  open(family: PingFamily): PingSocket {
    this.opens++;
    if (this.forbidden) {
      throw new PingSocketError('forbidden', 13, 'net.ipv4.ping_group_range is "1 0"');
    }
    const s = new FakeSocket(family, 0xbe00 + this.sockets.length);
    this.sockets.push(s);
    return s;
  }

  get open$(): FakeSocket[] {
    return this.sockets.filter((s) => !s.closed);
  }
}

function natRig(options: IcmpNatOptions = {}) {
  const fake = new FakePingSockets();
  const r = rig<Ipv4Packet, Buffer>((ctx) => icmpEchoNat(ctx, fake, options));
  const send = (o: EchoOptions = {}): void => r.input.next(ipOf(echoFrame(o)));
  return { ...r, fake, send };
}

function icmpOf(frame: Buffer): Icmpv4Message {
  const ip = ipOf(frame);
  return Icmpv4Message.parse(ip.buf, ip.payloadOffset, ip.payloadLength);
}

test('an echo request goes out on a ping socket with the TTL less one, and the reply comes back as sent', () => {
  const r = natRig();
  const request = echoFrame({ ident: 0x1234, seq: 7, ttl: 64 });
  r.input.next(ipOf(request));

  assert.equal(r.fake.sockets.length, 1);
  const [sent] = r.fake.sockets[0]!.sent;
  assert.equal(sent!.address, FAR);
  assert.equal(sent!.ttl, 63);
  assert.deepEqual(sent!.message, request.subarray(ETH_HEADER_LENGTH + 20));
  assert.equal(r.counter('icmp.echo.forwarded'), 1);

  r.fake.sockets[0]!.reply();
  assert.equal(r.out.length, 1);
  const reply = r.out[0]!;
  assert.deepEqual(reply.subarray(0, 6), Buffer.from(GUEST_MAC));
  assert.deepEqual(reply.subarray(6, 12), Buffer.from(GATEWAY_MAC));
  const ip = ipOf(reply);
  assert.equal(ip.src, FAR);
  assert.equal(ip.dst, GUEST_IP);
  const icmp = icmpOf(reply); // verifies the checksum
  assert.equal(icmp.type, 0);
  assert.equal(icmp.identifier, 0x1234, 'the guest identifier, not the kernel one');
  assert.equal(icmp.sequence, 7);
  assert.deepEqual(Buffer.from(icmp.body), request.subarray(ETH_HEADER_LENGTH + 28));
  assert.equal(r.counter('icmp.nat.replied'), 1);
});

test('one socket per (identifier, destination) flow, reused while the flow lives', () => {
  const r = natRig();
  r.send({ ident: 1, seq: 1 });
  r.send({ ident: 1, seq: 2 });
  r.send({ ident: 2, seq: 1 });
  r.send({ ident: 1, seq: 3, dst: parseIpv4('203.0.113.9') });
  assert.equal(r.fake.sockets.length, 3);
  assert.deepEqual(
    r.fake.sockets.map((s) => s.sent.length),
    [2, 1, 1],
  );
  // Each flow's replies carry its own guest identifier.
  r.fake.sockets[1]!.reply();
  r.fake.sockets[0]!.reply();
  assert.deepEqual(
    r.out.map((f) => icmpOf(f).identifier),
    [2, 1],
  );
});

test('a reply from another address than the flow destination is dropped and counted', () => {
  const r = natRig();
  r.send();
  r.fake.sockets[0]!.reply(parseIpv4('203.0.113.66'));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('icmp.nat.reply-wrong-source'), 1);
});

test('malformed replies are counted, never thrown', () => {
  const r = natRig();
  r.send();
  const s = r.fake.sockets[0]!;
  s.incoming.next(message('reply', Buffer.alloc(3), FAR));
  s.incoming.next(message('reply', Buffer.from('0800000000000000', 'hex'), FAR));
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('icmp.nat.reply-malformed'), 2);
});

test('idle flows expire on the scheduler and their sockets close; a new request opens a new one', () => {
  const r = natRig({ idleMs: 1000 });
  r.send({ seq: 1 });
  r.advanceTo(600);
  r.send({ seq: 2 });
  r.advanceTo(1000);
  assert.equal(r.fake.open$.length, 1, 'used at 600: still open at 1000');
  r.advanceTo(2100);
  assert.equal(r.fake.open$.length, 0, 'idle since 600: closed by 2100');
  r.send({ seq: 3 });
  assert.equal(r.fake.sockets.length, 2);
  assert.equal(r.fake.open$.length, 1);
});

test('at the flow cap the least recently used flow is closed', () => {
  const r = natRig({ maxFlows: 2 });
  r.send({ ident: 1 });
  r.send({ ident: 2 });
  r.send({ ident: 1 });
  r.send({ ident: 3 });
  assert.equal(r.fake.sockets[1]!.closed, true, 'ident 2 was least recently used');
  assert.equal(r.fake.sockets[0]!.closed, false);
  assert.equal(r.fake.open$.length, 2);
  assert.equal(r.counter('icmp.nat.flow-evicted'), 1);
});

test('a host ICMP error reaches the guest from its reporter, quoting the guest request', () => {
  const r = natRig();
  const request = echoFrame({ seq: 5 });
  r.input.next(ipOf(request));
  r.send({ seq: 6 });
  r.fake.sockets[0]!.error(5, { type: 3, code: 1 });
  assert.equal(r.out.length, 1);
  const ip = ipOf(r.out[0]!);
  assert.equal(ip.src, ROUTER);
  assert.equal(ip.dst, GUEST_IP);
  const original = ipOf(request);
  const expected = Buffer.alloc(icmpv4ErrorLength(original));
  writeIcmpv4Error(expected, 0, 3, 1, original);
  assert.deepEqual(Buffer.from(ip.payload), expected);
  assert.equal(r.counter('icmp.nat.error-relayed'), 1);
});

test('TTL exceeded on the way and fragmentation needed keep their code and MTU', () => {
  const r = natRig();
  r.send({ seq: 1 });
  r.send({ seq: 2 });
  const s = r.fake.sockets[0]!;
  s.error(1, { type: 11, code: 0 });
  s.error(2, { type: 3, code: 4, info: 1400 });
  const [exceeded, fragNeeded] = r.out.map(icmpOf);
  assert.equal(exceeded!.type, 11);
  assert.equal(fragNeeded!.code, 4);
  assert.equal(fragNeeded!.nextHopMtu, 1400);
});

test('errors about unknown sequences, or of kinds we do not map, are counted', () => {
  const r = natRig();
  r.send({ seq: 1 });
  const s = r.fake.sockets[0]!;
  s.error(99, { type: 3, code: 1 });
  s.error(1, { type: 5, code: 0 });
  s.error(1, { origin: ErrorOrigin.Local, errno: 999 });
  assert.equal(r.out.length, 0);
  assert.equal(r.counter('icmp.nat.error-unmatched'), 1);
  assert.equal(r.counter('icmp.nat.error-unmapped'), 2);
});

test('a local EHOSTUNREACH on the error queue becomes host unreachable from the gateway', () => {
  const r = natRig();
  r.send({ seq: 1 });
  r.fake.sockets[0]!.error(1, { origin: ErrorOrigin.Local, errno: 113 }, 0);
  const ip = ipOf(r.out[0]!);
  assert.equal(ip.src, GATEWAY);
  assert.equal(icmpOf(r.out[0]!).code, 1);
});

test('a send that fails with ENETUNREACH answers net unreachable from the gateway', () => {
  const fake = new FakePingSockets();
  const r = rig<Ipv4Packet, Buffer>((ctx) => icmpEchoNat(ctx, fake));
  const original = fake.open.bind(fake);
  fake.open = (family) => {
    const s = original(family) as FakeSocket;
    s.sendResult = -101;
    return s;
  };
  r.input.next(ipOf(echoFrame()));
  assert.equal(r.out.length, 1);
  assert.equal(ipOf(r.out[0]!).src, GATEWAY);
  const icmp = icmpOf(r.out[0]!);
  assert.deepEqual([icmp.type, icmp.code], [3, 0]);
  assert.equal(r.counter('icmp.echo.net-unreachable'), 1);
});

test('unreachable NAT targets, TTL 1, broadcasts and other ICMP types never reach a socket', () => {
  const r = natRig();
  r.send({ dst: parseIpv4('127.0.0.1') });
  r.send({ ttl: 1 });
  r.send({ dst: parseIpv4('224.0.0.1') });
  r.send({ dst: parseIpv4('10.0.2.255') });
  r.send({ type: 0 });
  assert.equal(r.fake.opens, 0);
  const [unreachable, exceeded] = r.out.map(icmpOf);
  assert.deepEqual([unreachable!.type, unreachable!.code], [3, 0]);
  assert.deepEqual([exceeded!.type, exceeded!.code], [11, 0]);
  assert.equal(r.out.length, 2);
  assert.equal(r.counter('icmp.echo.unreachable'), 1);
  assert.equal(r.counter('icmp.echo.ttl-exceeded'), 1);
  assert.equal(r.counter('icmp.echo.martian'), 1);
  assert.equal(r.counter('icmp.echo.broadcast'), 1);
  assert.equal(r.counter('icmp.unhandled-type'), 1);
});

test('bad ICMP from the guest is counted by its parse error', () => {
  const r = natRig();
  const frame = echoFrame();
  frame[frame.length - 1] ^= 0xff;
  r.input.next(ipOf(frame));
  assert.equal(r.counter('icmpv4.bad-checksum'), 1);
  assert.equal(r.fake.opens, 0);
});

function capturingLog(lines: string[]): Logger {
  const put = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return {
    enabled: () => false,
    error: put('error'),
    warn: put('warn'),
    info: put('info'),
    debug: put('debug'),
    trace: put('trace'),
  };
}

test('forbidden ping sockets: one warning naming the sysctl, counted drops, retries later, gateway still answers', () => {
  const fake = new FakePingSockets();
  fake.forbidden = true;
  const lines: string[] = [];
  const r = rig<Ipv4Packet, Buffer>((ctx) => icmpv4Route(ctx), networkConfig(), {
    pingSockets: fake,
    log: capturingLog(lines),
  });
  const send = (o: EchoOptions): void => r.input.next(ipOf(echoFrame(o)));
  send({ seq: 1 });
  send({ seq: 2 });
  send({ seq: 3, dst: GATEWAY });
  assert.equal(r.counter('icmp.echo.no-ping-socket'), 2);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^warn .*net\.ipv4\.ping_group_range/);
  assert.match(lines[0]!, /sysctl -w net\.ipv4\.ping_group_range="0 2147483647"/);
  assert.equal(r.out.length, 1, 'the gateway answered');
  assert.equal(ipOf(r.out[0]!).src, GATEWAY);
  assert.equal(icmpOf(r.out[0]!).type, 0);
  assert.equal(fake.opens, 1, 'no retry within the back-off');

  r.advanceTo(10_000);
  fake.forbidden = false;
  send({ seq: 4 });
  assert.equal(fake.opens, 2);
  assert.equal(r.counter('icmp.echo.forwarded'), 1);
  assert.equal(lines.length, 1, 'still one warning');
});

test('without a ping layer the stack counts echo to other hosts as not-local', () => {
  const r = rig<Ipv4Packet, Buffer>((ctx) => icmpv4Route(ctx));
  r.input.next(ipOf(echoFrame()));
  assert.equal(r.counter('icmp.echo.not-local'), 1);
});

test('the whole stack routes echo to other hosts through the ping layer, and closes sockets when it stops', () => {
  const fake = new FakePingSockets();
  const r = rig<Buffer, Buffer>((ctx) => slirpStack(ctx), networkConfig(), { pingSockets: fake });
  r.input.next(echoFrame({ seq: 1 }));
  r.input.next(echoFrame({ seq: 1, dst: GATEWAY }));
  fake.sockets[0]!.reply();
  assert.deepEqual(
    r.out.map((f) => ipOf(f).src),
    [GATEWAY, FAR],
  );
  r.input.complete();
  assert.equal(fake.open$.length, 0, 'every socket closed when the stack completed');
});
