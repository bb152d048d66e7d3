/**
 * Small UDP programs the integration scripts run on either side of the
 * stack (as `node dist/test/integration/udp-tools.js COMMAND ...`). Each
 * binds or connects only where the script tells it (loopback, the guest
 * network, documentation addresses), prints one line per result, and
 * exits non-zero on any failure or after its time limit.
 *
 * - `echo-server ADDR PORT`: echoes every datagram; prints `listening`.
 * - `echo-client ADDR PORT SIZE COUNT`: sends COUNT datagrams of SIZE
 *   bytes one after the other, checks each echo byte for byte.
 * - `refused ADDR PORT`: sends one datagram on a connected socket and
 *   expects ECONNREFUSED (an ICMP port unreachable came back).
 * - `send ADDR PORT`: sends one datagram, waits 300 ms for whatever comes
 *   back, and prints what did (`got N bytes`, `error CODE`, or `nothing`).
 * - `dns-server ADDR PORT`: answers A queries: `NAME.test` gets
 *   198.51.100.42, anything else NXDOMAIN; prints `listening`, and one
 *   `query NAME id=ID [tcp] from ADDR` line per query (ADDR: the sender's
 *   source address).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import {
  DnsHeader,
  DnsTcpDeframer,
  DnsType,
  encodeDnsResponse,
  frameDnsTcp,
  parseQuestion,
} from '../../src/protocols/dns.js';

const LIMIT_MS = 20_000;

function die(message: string): never {
  process.stdout.write(`${message}\n`);
  process.exit(1);
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function echoServer(address: string, port: number): void {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, from) => s.send(m, from.port, from.address));
  s.bind(port, address, () => process.stdout.write('listening\n'));
}

function echoClient(address: string, port: number, size: number, count: number): void {
  const s = dgram.createSocket('udp4');
  let n = 0;
  let expected = pattern(size, 0);
  const next = (): void => {
    expected = pattern(size, n);
    s.send(expected);
  };
  s.on('error', (e) => die(`error ${(e as NodeJS.ErrnoException).code}`));
  s.on('message', (m) => {
    if (!m.equals(expected)) die(`mismatch: got ${m.length} bytes, wanted ${size}`);
    n += 1;
    process.stdout.write(`echo ${n} ${m.length}\n`);
    if (n === count) process.exit(0);
    next();
  });
  s.connect(port, address, next);
  setTimeout(() => die(`timeout after ${n} echoes`), LIMIT_MS).unref();
}

function refused(address: string, port: number): void {
  const s = dgram.createSocket('udp4');
  s.on('error', (e) => {
    process.stdout.write(`refused ${(e as NodeJS.ErrnoException).code}\n`);
    process.exit(0);
  });
  s.on('message', () => die('unexpected answer'));
  s.connect(port, address, () => s.send('anyone?'));
  setTimeout(() => die('timeout: no error came back'), 5000).unref();
}

function sendOne(address: string, port: number): void {
  const s = dgram.createSocket('udp4');
  let result = 'nothing';
  s.on('error', (e) => (result = `error ${(e as NodeJS.ErrnoException).code}`));
  s.on('message', (m) => (result = `got ${m.length} bytes`));
  s.connect(port, address, () => s.send('one'));
  setTimeout(() => {
    process.stdout.write(`${result}\n`);
    process.exit(0);
  }, 300);
}

/** The test server's answer to one query, or undefined for a bad one. */
function dnsAnswer(m: Uint8Array, transport: string, from: string): Uint8Array | undefined {
  try {
    const header = DnsHeader.parse(m);
    const question = parseQuestion(m);
    process.stdout.write(`query ${question.name} id=${header.id}${transport} from ${from}\n`);
    const known = question.name.endsWith('.test');
    const answers =
      known && question.type === DnsType.A
        ? [{ type: 'A' as const, address: 0xc633642a, ttl: 60 }]
        : [];
    const query = { id: header.id, rd: header.rd, question };
    return encodeDnsResponse(query, answers, known ? 0 : 3);
  } catch (err) {
    process.stdout.write(`bad query: ${String(err)}\n`);
    return undefined;
  }
}

/** Answers over UDP and over TCP (RFC 7766 framing) on the same port. */
function dnsServer(address: string, port: number): void {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, from) => {
    const answer = dnsAnswer(m, '', from.address);
    if (answer) s.send(answer, from.port, from.address);
  });
  const tcp = net.createServer((conn) => {
    const deframer = new DnsTcpDeframer();
    conn.on('data', (chunk) => {
      for (const m of deframer.push(chunk)) {
        const answer = dnsAnswer(m, ' tcp', conn.remoteAddress ?? '?');
        if (answer) conn.write(frameDnsTcp(answer));
      }
    });
    conn.on('error', () => conn.destroy());
  });
  let bound = 0;
  const ready = (): void => {
    if (++bound === 2) process.stdout.write('listening\n');
  };
  s.bind(port, address, ready);
  tcp.listen(port, address, ready);
}

const [command, address = '', portText = '', ...rest] = process.argv.slice(2);
const port = Number(portText);
switch (command) {
  case 'echo-server':
    echoServer(address, port);
    break;
  case 'echo-client':
    echoClient(address, port, Number(rest[0]), Number(rest[1] ?? 1));
    break;
  case 'refused':
    refused(address, port);
    break;
  case 'send':
    sendOne(address, port);
    break;
  case 'dns-server':
    dnsServer(address, port);
    break;
  default:
    die(`unknown command ${command}`);
}
