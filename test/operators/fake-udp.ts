/**
 * A fake host for operator tests: a UdpSocketFactory that records every
 * socket opened, what was sent on it, and lets the test play the host's
 * side (datagrams and errors back).
 */
import { Observable, Subject } from 'rxjs';
import type { UdpSocketEvent, UdpSocketFactory, UdpTarget } from '../../src/streams/udp-socket.js';

export interface FakeSocket {
  target: UdpTarget;
  sent: Buffer[];
  closed: boolean;
  /** Delivers a datagram from the host's peer. */
  reply(data: Uint8Array): void;
  fail(code: string, syscall?: string): void;
}

export function fakeHost(): { open: UdpSocketFactory; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  const open: UdpSocketFactory = (target, outgoing$) =>
    new Observable<UdpSocketEvent>((subscriber) => {
      const events = new Subject<UdpSocketEvent>();
      const socket: FakeSocket = {
        target,
        sent: [],
        closed: false,
        reply: (data) => events.next({ kind: 'message', data: Buffer.from(data) }),
        fail: (code, syscall = 'recvmsg') => events.next({ kind: 'error', code, syscall }),
      };
      sockets.push(socket);
      const a = events.subscribe(subscriber);
      const b = outgoing$.subscribe((d) => socket.sent.push(Buffer.from(d)));
      return () => {
        socket.closed = true;
        a.unsubscribe();
        b.unsubscribe();
      };
    });
  return { open, sockets };
}
