/**
 * The one logger, and the drop counters. Levels are error < warn < info <
 * debug < trace; the level comes from RXSLIRP_LOG (default `warn`) or from
 * setLogLevel. Everything goes to stderr: stdout belongs to the slirp4netns
 * start-up text. The data path calls `log.debug` only behind `log.enabled`
 * checks so that a disabled level costs one comparison.
 */

export type Level = 'error' | 'warn' | 'info' | 'debug' | 'trace';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export interface Logger {
  enabled(level: Level): boolean;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  trace(msg: string): void;
}

let threshold = ORDER[(process.env['RXSLIRP_LOG'] as Level | undefined) ?? 'warn'] ?? ORDER.warn;
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: Level): void {
  threshold = ORDER[level];
}

/** Redirects log lines (tests capture them). */
export function setLogSink(write: (line: string) => void): void {
  sink = write;
}

function emit(level: Level, scope: string, msg: string): void {
  if (ORDER[level] <= threshold) sink(`rxslirp ${level} [${scope}] ${msg}`);
}

export function logger(scope: string): Logger {
  return {
    enabled: (level) => ORDER[level] <= threshold,
    error: (m) => emit('error', scope, m),
    warn: (m) => emit('warn', scope, m),
    info: (m) => emit('info', scope, m),
    debug: (m) => emit('debug', scope, m),
    trace: (m) => emit('trace', scope, m),
  };
}

/**
 * Named monotonically increasing counters: every dropped frame bumps one
 * whose name says why (`ipv4.bad-checksum`, `arp.not-for-us`). A plain Map,
 * so counting costs a hash lookup and nothing else.
 */
export class Counters {
  private readonly values = new Map<string, number>();

  add(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  /** Sorted snapshot, for the API and for tests. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values].sort(([a], [b]) => a.localeCompare(b)));
  }
}
