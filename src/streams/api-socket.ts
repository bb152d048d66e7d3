/**
 * The control socket's transport: a unix stream socket at a path, one
 * request per connection. Nothing here knows the requests' contents; the
 * caller says when a request is whole and answers it.
 *
 * Per connection: bytes are read until EOF or until `isComplete` holds for
 * what arrived; more than `maxBytes` gets the `tooLarge` reply instead.
 * The reply is written once, then our side of the connection is shut
 * down and anything the client still sends is ignored.
 *
 * The socket file: a stale socket at the path (left by a process that
 * died) is removed before listening, as slirp4netns does; any other kind
 * of file there is left alone and the listen fails. `close()` stops
 * listening and removes the file.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

export interface ApiSocketOptions {
  maxBytes: number;
  /** Whether the bytes read so far are a whole request. */
  isComplete(text: string): boolean;
  /** The reply to a request longer than `maxBytes`. */
  tooLarge: string;
  /** Answers one request (its text, maybe incomplete if the client hit EOF). */
  handle(text: string): Promise<string>;
  /** Reports a failure of one connection (never of the listener). */
  onError?(err: Error): void;
}

export interface ApiSocket {
  readonly path: string;
  close(): void;
}

/** Listens at `path`; resolves once the socket accepts connections. */
export function listenApiSocket(path: string, options: ApiSocketOptions): Promise<ApiSocket> {
  removeStaleSocket(path);
  const server = createServer({ allowHalfOpen: true }, (c) => serve(c, options));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.on('error', (e) => options.onError?.(e));
      resolve({ path, close: () => closeServer(server, path) });
    });
  });
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function closeServer(server: Server, path: string): void {
  server.close();
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function serve(c: Socket, options: ApiSocketOptions): void {
  const chunks: Buffer[] = [];
  let length = 0;
  let answered = false;
  const answer = (reply: Promise<string>): void => {
    answered = true;
    reply
      .then((text) => c.end(text))
      .catch((e: unknown) => {
        options.onError?.(e as Error);
        c.destroy();
      });
  };
  c.on('data', (chunk: Buffer) => {
    if (answered) return;
    chunks.push(chunk);
    length += chunk.length;
    if (length > options.maxBytes) {
      answer(Promise.resolve(options.tooLarge));
      return;
    }
    const text = Buffer.concat(chunks, length).toString('utf8');
    if (options.isComplete(text)) answer(options.handle(text));
  });
  c.on('end', () => {
    if (!answered) answer(options.handle(Buffer.concat(chunks, length).toString('utf8')));
  });
  c.on('error', (e) => options.onError?.(e));
}
