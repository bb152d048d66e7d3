/**
 * Exercises streams/udp-socket.ts against the kernel; run inside a private
 * namespace by udp-socket.test.ts, with only loopback up. Prints one JSON
 * line of what each case saw.
 */
import dgram from 'node:dgram';
import { Subject, firstValueFrom, take, toArray, timeout } from 'rxjs';
import { udpConnection, type UdpSocketEvent } from '../../src/streams/udp-socket.js';

async function events(
  target: { address: string; port: number },
  send: Uint8Array[],
  count: number,
): Promise<UdpSocketEvent[]> {
  const outgoing = new Subject<Uint8Array>();
  const seen = firstValueFrom(
    udpConnection({ ...target, family: 4 }, outgoing).pipe(
      take(count),
      toArray(),
      timeout({ first: 3000, with: () => [[] as UdpSocketEvent[]] }),
    ),
  );
  // Sent at once, before the connect completes: the stream queues them.
  for (const d of send) outgoing.next(d);
  return seen;
}

function summary(list: UdpSocketEvent[]): string[] {
  return list.map((e) => (e.kind === 'message' ? `message ${e.data}` : `error ${e.code}`));
}

const echo = dgram.createSocket('udp4');
echo.on('message', (m, from) => echo.send(m, from.port, from.address));
echo.bind(7001, '127.0.0.1', async () => {
  const result = {
    echo: summary(
      await events({ address: '127.0.0.1', port: 7001 }, [Buffer.from('a'), Buffer.from('b')], 2),
    ),
    refused: summary(await events({ address: '127.0.0.1', port: 7002 }, [Buffer.from('x')], 1)),
    noRoute: summary(await events({ address: '203.0.113.1', port: 9 }, [Buffer.from('x')], 1)),
    portZero: summary(await events({ address: '127.0.0.1', port: 0 }, [Buffer.from('x')], 2)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  echo.close();
});
