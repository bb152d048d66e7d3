/**
 * Micro-benchmark of the pure TCP path: two endpoints joined in process,
 * one bulk transfer, every segment encoded with its checksum and parsed
 * back (as the tap path would without checksum offload). No sockets, no
 * RxJS: this is the per-segment cost of protocols/tcp alone.
 *
 *   npm run build && node dist/bench/tcp-endpoint.js [MB] [MTU...]
 */
import { pseudoSumV4 } from '../src/protocols/checksum.js';
import { TcpEndpoint, type TcpSink } from '../src/protocols/tcp/endpoint.js';
import {
  TcpSegment,
  encodeTcpSegment,
  encodedLength,
  type TcpRepr,
} from '../src/protocols/tcp/segment.js';

const MB = Number(process.argv[2] ?? 200);
const MTUS = process.argv.slice(3).map(Number);

function run(mtu: number, bytes: number): void {
  const queue: Array<[number, TcpSegment]> = [];
  const frame = new Uint8Array(70_000);
  let received = 0;
  let segments = 0;
  const eps: TcpEndpoint[] = [];
  const sink = (i: number): TcpSink => ({
    segment(seg: Readonly<TcpRepr>) {
      segments++;
      const n = encodedLength(seg);
      const ps = pseudoSumV4(1, 2, 6, n);
      const buf = seg.payload.length > 0 ? new Uint8Array(n) : frame;
      encodeTcpSegment(buf, 0, seg, ps);
      queue.push([1 - i, TcpSegment.parse(buf, 0, n, ps)]);
    },
    data(b: Uint8Array) {
      received += b.length;
      eps[i]!.consumed(b.length, 0);
    },
    peerFin() {},
    established() {},
    sendRoom() {},
    freed() {},
  });
  eps.push(new TcpEndpoint({ localPort: 1, remotePort: 2, iss: 1, mtu }, sink(0)));
  eps.push(new TcpEndpoint({ localPort: 2, remotePort: 1, iss: 2, mtu }, sink(1)));
  const [a, b] = eps as [TcpEndpoint, TcpEndpoint];
  const pump = (): void => {
    for (let e = queue.shift(); e; e = queue.shift()) eps[e[0]]!.receive(e[1], 0);
  };
  a.connect(0);
  pump();
  b.hostConnected(0);
  pump();
  const chunk = new Uint8Array(65536);
  let sent = 0;
  const t0 = process.hrtime.bigint();
  while (sent < bytes) {
    while (a.sendRoom > 0 && sent < bytes) {
      a.send(chunk, 0);
      sent += chunk.length;
    }
    pump();
  }
  a.close(0);
  pump();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (received !== sent) throw new Error(`received ${received} of ${sent}`);
  const gbps = (sent * 8) / s / 1e9;
  console.log(
    `MTU ${mtu}: ${(sent / 2 ** 20).toFixed(0)} MiB in ${s.toFixed(2)} s = ${gbps.toFixed(2)} Gbit/s, ` +
      `${segments} segments, ${((s / segments) * 1e6).toFixed(2)} us/segment`,
  );
}

for (const mtu of MTUS.length > 0 ? MTUS : [1500, 65520]) run(mtu, MB * 2 ** 20);
