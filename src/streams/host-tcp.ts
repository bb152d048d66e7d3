/**
 * Host TCP sockets for the NAT, behind a small interface so that the TCP
 * operator can be driven by a fake host in virtual-time tests.
 *
 * A connection reports its life through `HostTcpEvents`, each exactly when
 * node:net says so; `error` carries the errno code (ECONNREFUSED,
 * ENETUNREACH, ...). Sockets are opened half-open capable (our guest may
 * shut down one direction and keep receiving) and with Nagle off (the
 * guest's stack already decides segment sizes; we must not add latency).
 */
import { connect, type Socket } from 'node:net';

export interface HostTcpTarget {
  host: string;
  port: number;
  /** Source address for the outgoing connection (--outbound-addr). */
  localAddress?: string;
}

export interface HostTcpEvents {
  connected(): void;
  data(chunk: Buffer): void;
  /** The host sent FIN. */
  end(): void;
  error(code: string): void;
  closed(): void;
}

export interface HostTcpSocket {
  /** Queues bytes for the host; `written` runs once the kernel took them. */
  write(bytes: Uint8Array, written: () => void): void;
  /** FIN to the host once queued bytes are written. */
  end(): void;
  pause(): void;
  resume(): void;
  /** RST to the host and free the socket. */
  reset(): void;
  destroy(): void;
}

export type HostTcpConnector = (target: HostTcpTarget, events: HostTcpEvents) => HostTcpSocket;

/** The real thing: node:net sockets. */
export const netConnector: HostTcpConnector = (target, events) => {
  const socket: Socket = connect({
    host: target.host,
    port: target.port,
    localAddress: target.localAddress,
    allowHalfOpen: true,
    noDelay: true,
  });
  // A host peer that vanishes without a FIN or RST is found, and the
  // guest's connection reset, after about ten idle minutes.
  socket.setKeepAlive(true, 600_000);
  socket.on('connect', () => events.connected());
  socket.on('data', (chunk: Buffer) => events.data(chunk));
  socket.on('end', () => events.end());
  socket.on('error', (err: NodeJS.ErrnoException) => events.error(err.code ?? 'EIO'));
  socket.on('close', () => events.closed());
  return {
    write: (bytes, written) => {
      // A view into a tap read pool keeps the whole pool alive while it
      // waits: copy it when it would wait (the socket already has a
      // backlog); otherwise the kernel takes it at once, uncopied.
      const chunk = socket.writableLength > 0 ? Buffer.from(bytes) : bytes;
      socket.write(chunk, () => written());
    },
    end: () => {
      socket.end();
    },
    pause: () => {
      socket.pause();
    },
    resume: () => {
      socket.resume();
    },
    reset: () => {
      if (!socket.destroyed) socket.resetAndDestroy();
    },
    destroy: () => {
      socket.destroy();
    },
  };
};
