/**
 * The one error type a codec throws. Every parser in protocols/ either
 * returns a value or throws a ParseError whose `code` is a stable, dotted
 * name (`ipv4.truncated`, `arp.bad-hardware`): the pipeline counts drops
 * under that name, and tests assert on it. Anything else escaping a parser
 * is a bug.
 */
export class ParseError extends Error {
  constructor(
    readonly code: string,
    message: string = code,
  ) {
    super(message);
    this.name = 'ParseError';
  }
}

/** Throws `code` unless `length` bytes are available from `offset`. */
export function need(buf: Uint8Array, offset: number, length: number, code: string): void {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new ParseError(code, `${code}: need ${length} bytes at ${offset}, have ${buf.length}`);
  }
}
