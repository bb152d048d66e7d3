/**
 * Small servers and clients for the TCP integration tests and the
 * benchmark, run as `node tcp-tools.js COMMAND ARGS...` on either side of
 * rxslirp. Servers bind 127.0.0.1 (or $TCP_TOOLS_BIND, for a server in the
 * guest behind a port forward) and print `listening` once they accept; clients print one result line and exit 0 only when every byte
 * checked out. Every client is bounded in time (TIME_LIMIT_MS).
 *
 * - http-server PORT FILE: GET streams FILE; PUT/POST answers with the
 *   body's `sha256 bytes`.
 * - eof-server PORT digest|echo: per connection, reads to EOF, then
 *   answers `bytes sha256\n` (and with `echo`, the bytes it got after it),
 *   and closes.
 * - stream-echo-server PORT: echoes bytes as they come (Nagle off), and
 *   closes when the client does.
 * - many-clients HOST PORT N: N concurrent connections to a
 *   stream-echo-server, each with its own random payload, each echo
 *   checked byte for byte before the client closes.
 * - half-close HOST PORT BYTES digest|echo: sends BYTES, shuts down its
 *   write side, then must still receive the eof-server's whole answer.
 * - connect HOST PORT: one connect(); prints `connected` or the error code
 *   and how long it took.
 * - pingpong HOST PORT COUNT SIZE: request/response round trips of SIZE
 *   bytes on one connection to a stream-echo-server; prints the median.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const TIME_LIMIT_MS = 120_000;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function listening(
  server: { listen(port: number, host: string, cb: () => void): unknown },
  port: number,
): void {
  const host = process.env['TCP_TOOLS_BIND'] ?? '127.0.0.1';
  server.listen(port, host, () => console.log('listening'));
}

function httpServer(port: number, file: string): void {
  const size = statSync(file).size;
  const server = createHttpServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => res.end(`${hash.digest('hex')} ${bytes}\n`));
  });
  listening(server, port);
}

function eofServer(port: number, echo: boolean): void {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      socket.write(`${all.length} ${sha256(all)}\n`);
      if (echo) socket.end(all);
      else socket.end();
    });
    socket.on('error', () => socket.destroy());
  });
  listening(server, port);
}

/** Sends `payload`, half-closes, and resolves with everything the server sent back. */
function exchange(host: string, port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket: Socket = connect({ host, port, allowHalfOpen: true }, () => socket.end(payload));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** Sends `payload` and resolves with as many bytes of echo, then closes. */
function roundTrip(host: string, port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const socket: Socket = connect({ host, port }, () => socket.write(payload));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got < payload.length) return;
      resolve(Buffer.concat(chunks));
      socket.end();
    });
    socket.on('end', () => reject(new Error(`closed after ${got} of ${payload.length} bytes`)));
    socket.on('error', reject);
  });
}

function expectedAnswer(payload: Buffer, echo: boolean): Buffer {
  const digest = Buffer.from(`${payload.length} ${sha256(payload)}\n`);
  return echo ? Buffer.concat([digest, payload]) : digest;
}

async function manyClients(host: string, port: number, n: number): Promise<void> {
  const payloads = Array.from({ length: n }, (_, i) => randomBytes(1024 + ((i * 7919) % 131072)));
  const started = Date.now();
  const answers = await Promise.allSettled(payloads.map((p) => roundTrip(host, port, p)));
  let good = 0;
  answers.forEach((a, i) => {
    if (a.status === 'rejected') console.log(`connection ${i}: ${String(a.reason)}`);
    else if (!a.value.equals(payloads[i]!)) {
      console.log(`connection ${i}: answer differs (${a.value.length} bytes)`);
    } else good++;
  });
  const bytes = payloads.reduce((s, p) => s + p.length, 0);
  console.log(
    `many-clients: ${good}/${n} verified, ${bytes} bytes each way in ${Date.now() - started} ms`,
  );
  process.exitCode = good === n ? 0 : 1;
}

async function halfClose(host: string, port: number, bytes: number, echo: boolean): Promise<void> {
  const payload = randomBytes(bytes);
  const answer = await exchange(host, port, payload);
  const ok = answer.equals(expectedAnswer(payload, echo));
  console.log(
    `half-close: sent ${bytes}, received ${answer.length} after our FIN: ${ok ? 'ok' : 'MISMATCH'}`,
  );
  process.exitCode = ok ? 0 : 1;
}

function connectOnce(host: string, port: number): void {
  const started = process.hrtime.bigint();
  const elapsed = (): string => `${Number(process.hrtime.bigint() - started) / 1e6} ms`;
  const socket = connect({ host, port }, () => {
    console.log(`connected after ${elapsed()}`);
    socket.destroy();
  });
  socket.on('error', (e: NodeJS.ErrnoException) =>
    console.log(`error ${e.code} after ${elapsed()}`),
  );
}

function streamEchoServer(port: number): void {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => socket.write(c));
    socket.on('error', () => socket.destroy());
  });
  listening(server, port);
}

/** COUNT round trips of SIZE bytes, one outstanding at a time; prints median and p99 in us. */
function pingpong(host: string, port: number, count: number, size: number): void {
  const message = randomBytes(size);
  const rtts: number[] = [];
  let got = 0;
  let sentAt = 0n;
  const socket = connect({ host, port, noDelay: true }, () => send());
  const send = (): void => {
    sentAt = process.hrtime.bigint();
    socket.write(message);
  };
  socket.on('data', (c: Buffer) => {
    got += c.length;
    if (got < size) return;
    got -= size;
    rtts.push(Number(process.hrtime.bigint() - sentAt) / 1000);
    if (rtts.length < count) return send();
    socket.destroy();
    const sorted = rtts.slice(Math.floor(count / 10)).sort((a, b) => a - b);
    const at = (q: number): string => sorted[Math.floor(q * (sorted.length - 1))]!.toFixed(1);
    console.log(
      `pingpong: ${count} round trips of ${size} B: median ${at(0.5)} us p99 ${at(0.99)} us`,
    );
  });
  socket.on('error', (e) => {
    console.log(`pingpong: ${e.message}`);
    process.exitCode = 1;
  });
}

function main(argv: string[]): void {
  const [cmd, ...a] = argv;
  const num = (i: number): number => Number(a[i]);
  const failed = (e: unknown): void => {
    console.log(`${cmd}: ${String(e)}`);
    process.exitCode = 1;
  };
  if (!cmd?.endsWith('-server')) {
    setTimeout(() => {
      console.log(`${cmd}: time limit of ${TIME_LIMIT_MS} ms reached`);
      process.exit(2);
    }, TIME_LIMIT_MS).unref();
  }
  switch (cmd) {
    case 'http-server':
      return httpServer(num(0), a[1]!);
    case 'eof-server':
      return eofServer(num(0), a[1] === 'echo');
    case 'many-clients':
      manyClients(a[0]!, num(1), num(2)).catch(failed);
      return;
    case 'half-close':
      halfClose(a[0]!, num(1), num(2), a[3] === 'echo').catch(failed);
      return;
    case 'connect':
      return connectOnce(a[0]!, num(1));
    case 'stream-echo-server':
      return streamEchoServer(num(0));
    case 'pingpong':
      return pingpong(a[0]!, num(1), num(2), num(3));
    default:
      console.error(`tcp-tools: unknown command ${String(cmd)}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2));
