/**
 * A connected host datagram socket (node:dgram) as an Observable: the UDP
 * NAT opens one per guest flow, the DNS forwarder one per upstream server.
 *
 * `udpConnection(target, outgoing$)` opens the socket on subscription,
 * connects it to `target`, sends every datagram `outgoing$` emits, and
 * emits what arrives (`message`) and what fails (`error`, with the errno
 * code: `ECONNREFUSED` when the peer answered with ICMP port unreachable,
 * `ENETUNREACH`, `EHOSTUNREACH`, `EMSGSIZE`, ...). A connected socket is
 * what makes Linux report ICMP errors at all (without IP_RECVERR an
 * unconnected UDP socket never sees them), and it accepts datagrams from
 * its peer only. Errors never end the stream: the socket stays usable, as
 * the kernel's does. Unsubscribing closes the socket.
 *
 * Node refuses to send on a socket whose connect has not completed, so
 * datagrams that come before are queued, at most QUEUE_LIMIT of them; past
 * that each is reported as an `ENOBUFS` error and dropped. A failed connect
 * (no route: `ENETUNREACH`) is reported once, for itself and the datagrams
 * queued until then; each datagram sent after it is reported with the same
 * code.
 *
 * `bindUdp(host, port, events)` is the other kind, for UDP port forwards:
 * a socket bound to host:port and connected to nothing, that receives from
 * any peer and sends to whichever the caller names. It resolves once bound
 * and rejects when the bind fails (`EADDRINUSE`, `EACCES`, ...); send
 * errors are reported through `events.error` and never close it.
 *
 * The factory types let tests put fakes in their place (see
 * `UdpSocketFactory`, `UdpBind`); this module knows nothing of packets.
 */
import dgram from 'node:dgram';
import { Observable } from 'rxjs';

export interface UdpTarget {
  address: string;
  port: number;
  family: 4 | 6;
  /** Source address to bind (for --outbound-addr); any when undefined. */
  localAddress?: string;
}

export type UdpSocketEvent =
  { kind: 'message'; data: Buffer } | { kind: 'error'; code: string; syscall: string };

export type UdpSocketFactory = (
  target: UdpTarget,
  outgoing$: Observable<Uint8Array>,
) => Observable<UdpSocketEvent>;

const QUEUE_LIMIT = 64;

/** The node:dgram implementation of `UdpSocketFactory`. */
export const udpConnection: UdpSocketFactory = (target, outgoing$) =>
  new Observable<UdpSocketEvent>((subscriber) => {
    const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    const fail = (code: string, syscall: string): void =>
      subscriber.next({ kind: 'error', code, syscall });
    const onError = (err: NodeJS.ErrnoException): void =>
      fail(err.code ?? 'EIO', err.syscall ?? 'socket');
    let state: 'connecting' | 'connected' | 'failed' | 'closed' = 'connecting';
    let failure = '';
    let queue: Uint8Array[] = [];

    const send = (data: Uint8Array): void => {
      socket.send(data, (err) => {
        if (err && state !== 'closed') onError(err);
      });
    };

    socket.on('message', (data) => subscriber.next({ kind: 'message', data }));
    socket.on('error', onError);
    const failed = (err: Error): void => {
      state = 'failed';
      failure = (err as NodeJS.ErrnoException).code ?? 'EIO';
      fail(failure, 'connect');
      queue = [];
    };
    const connect = (): void => {
      try {
        socket.connect(target.port, target.address, (err?: Error) => {
          if (state === 'closed') return;
          if (err) return failed(err);
          state = 'connected';
          for (const d of queue) send(d);
          queue = [];
        });
      } catch (err) {
        // Node refuses some targets before trying (port 0, a bad address).
        failed(err as Error);
      }
    };
    if (target.localAddress === undefined) connect();
    else socket.bind({ address: target.localAddress, port: 0 }, connect);

    const outgoing = outgoing$.subscribe((data) => {
      if (state === 'connected') send(data);
      else if (state === 'failed') fail(failure, 'send');
      else if (queue.length < QUEUE_LIMIT) queue.push(data);
      else fail('ENOBUFS', 'send');
    });
    return () => {
      state = 'closed';
      outgoing.unsubscribe();
      queue = [];
      socket.close();
    };
  });

/** A host peer of a bound socket: where a datagram came from or goes to. */
export interface UdpPeer {
  readonly address: string;
  readonly port: number;
}

/** What a bound socket reports: datagrams, and errors of its sends. */
export interface HostUdpEvents {
  message(data: Buffer, from: UdpPeer): void;
  error(code: string): void;
}

/** A bound, unconnected host socket (a UDP port forward's). */
export interface HostUdpSocket {
  send(data: Uint8Array, to: UdpPeer): void;
  close(): void;
}

export type UdpBind = (host: string, port: number, events: HostUdpEvents) => Promise<HostUdpSocket>;

/** The node:dgram implementation of `UdpBind` (IPv4, as forwards are). */
export const bindUdp: UdpBind = (host, port, events) =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    let closed = false;
    const failed = (err: Error): void => {
      closed = true;
      socket.close();
      reject(err);
    };
    socket.once('error', failed);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', failed);
      socket.on('error', (err: NodeJS.ErrnoException) => events.error(err.code ?? 'EIO'));
      socket.on('message', (data, r) => events.message(data, { address: r.address, port: r.port }));
      resolve({
        send: (data, to) => {
          if (closed) return;
          socket.send(data, to.port, to.address, (err) => {
            if (err && !closed) events.error((err as NodeJS.ErrnoException).code ?? 'EIO');
          });
        },
        close: () => {
          if (closed) return;
          closed = true;
          socket.close();
        },
      });
    });
  });
