/**
 * Host TCP sockets for the NAT, behind a small interface so that the TCP
 * operator can be driven by a fake host in virtual-time tests.
 *
 * A connection reports its life through `HostTcpEvents`, each exactly when
 * node:net says so; `error` carries the errno code (ECONNREFUSED,
 * ENETUNREACH, ...). Sockets are opened half-open capable (our guest may
 * shut down one direction and keep receiving) and with Nagle off (the
 * guest's stack already decides segment sizes; we must not add latency).
 *
 * Reads land in one buffer shared by every socket (node:net's `onread`)
 * and are copied at once into chunks cut from `hostChunks`, which the
 * glue gives back when the guest has acknowledged them: a bulk download
 * then reuses the same few megabytes instead of leaving a 64 KiB buffer
 * per read to the garbage collector. Sockets accepted by `listenTcp`
 * (port forwarding) cannot read that way: their chunks are node's own
 * buffers, which `releaseHostChunk` ignores.
 */
import { connect, createServer, type Socket } from 'node:net';
import { Recycler } from './recycler.js';

export interface HostTcpTarget {
  host: string;
  port: number;
  /** Source address for the outgoing connection (--outbound-addr). */
  localAddress?: string;
}

export interface HostTcpEvents {
  connected(): void;
  /**
   * Bytes from the host: the receiver's to keep. Give the chunk to
   * `releaseHostChunk` once nothing reads it any more (or never).
   */
  data(chunk: Buffer): void;
  /** The host sent FIN. */
  end(): void;
  error(code: string): void;
  closed(): void;
}

export interface HostTcpSocket {
  /**
   * Queues bytes for the host; `written` runs once the kernel took them.
   * Returns true when the socket still holds `bytes` themselves (not a
   * copy) after the call, so the caller must not reuse their memory.
   */
  write(bytes: Uint8Array, written: () => void): boolean;
  /** FIN to the host once queued bytes are written. */
  end(): void;
  pause(): void;
  resume(): void;
  /** RST to the host and free the socket. */
  reset(): void;
  destroy(): void;
}

export type HostTcpConnector = (target: HostTcpTarget, events: HostTcpEvents) => HostTcpSocket;

/** Every host socket reads into this, and the bytes are copied out at once. */
const READ_BUFFER = new Uint8Array(64 * 1024);

/** Where chunks from host sockets are cut (1 MiB blocks, 16 kept for reuse). */
const hostChunks = new Recycler(1 << 20, 16);

/** Copies of guest bytes waiting in a socket's write queue. */
const queuedWrites = new Recycler(1 << 20, 8);

/** Hands back a chunk `HostTcpEvents.data` gave; other buffers are ignored. */
export function releaseHostChunk(chunk: Uint8Array): void {
  hostChunks.give(chunk);
}

/** The real thing: node:net sockets. */
export const netConnector: HostTcpConnector = (target, events) => {
  const socket: Socket = connect({
    host: target.host,
    port: target.port,
    localAddress: target.localAddress,
    allowHalfOpen: true,
    noDelay: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number, buf: Uint8Array) => {
        const chunk = hostChunks.take(n);
        chunk.set(n === buf.length ? buf : buf.subarray(0, n));
        events.data(chunk);
        return true;
      },
    },
  });
  socket.on('connect', () => events.connected());
  return wrap(socket, events);
};

/**
 * A listening socket for port forwarding. Each connection it accepts is
 * handed to `onAccept` paused: nothing is read from it until `accept`
 * binds it to its events and the receiver resumes it.
 */
export interface HostTcpListener {
  close(): void;
}

export type HostTcpAccept = (events: HostTcpEvents) => HostTcpSocket;

/** Who connected to a listener: the client's address (as Node gives it) and port. */
export interface HostTcpPeer {
  address: string;
  port: number;
}

/** Listens on `host:port`; rejects with the errno (EADDRINUSE, ...) when it cannot. */
export function listenTcp(
  host: string,
  port: number,
  onAccept: (accept: HostTcpAccept, peer: HostTcpPeer) => void,
): Promise<HostTcpListener> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    socket.setNoDelay(true);
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    onAccept((events) => {
      socket.on('data', (chunk: Buffer) => events.data(chunk));
      // Listening for data resumes a stream: pause it again, explicitly.
      socket.pause();
      return wrap(socket, events);
    }, peer);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve({ close: () => server.close() });
    });
  });
}

/** The events and operations every host socket shares, connected or accepted. */
function wrap(socket: Socket, events: HostTcpEvents): HostTcpSocket {
  // A host peer that vanishes without a FIN or RST is found, and the
  // guest's connection reset, after about ten idle minutes.
  socket.setKeepAlive(true, 600_000);
  socket.on('end', () => events.end());
  socket.on('error', (err: NodeJS.ErrnoException) => events.error(err.code ?? 'EIO'));
  socket.on('close', () => events.closed());
  return {
    write: (bytes, written) => {
      // A view into a tap read pool keeps the whole pool alive while it
      // waits: copy it when it would wait (the socket already has a
      // backlog); otherwise the kernel takes it at once, uncopied.
      if (socket.writableLength === 0) {
        socket.write(bytes, () => written());
        return socket.writableLength > 0;
      }
      const copy = queuedWrites.take(bytes.length);
      copy.set(bytes);
      socket.write(copy, () => {
        queuedWrites.give(copy);
        written();
      });
      return false;
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
}
