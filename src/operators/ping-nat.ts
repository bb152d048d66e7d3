/**
 * The ping-socket NAT's flow table, for both IP versions: one host ping
 * socket (streams/ping.ts) per flow, flows kept in least-recently-used
 * order, closed by a sweep on ctx.scheduler every idleMs/2 once idle for
 * `idleMs` (so within 1.5 idleMs), at most `maxFlows` open (one more closes
 * the least recently used). When the kernel forbids ping sockets, requests
 * are counted as `<name>.echo.no-ping-socket` and dropped, one warning says
 * so, and opening is retried at most every FORBIDDEN_RETRY_MS.
 *
 * What differs between ICMP (icmp-nat.ts) and ICMPv6 (icmpv6-nat.ts) sits
 * behind `PingNatFamily`: which requests are forwarded and under what key,
 * the flow record, the send, and the frames to the guest (replies, errors).
 * This module never parses and never builds a frame itself.
 */
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import {
  PingSocketError,
  type PingMessage,
  type PingSocket,
  type PingSockets,
} from '../streams/ping.js';
import type { StackContext } from './context.js';
import { countFailure } from './handler.js';

export interface PingNatOptions {
  /** Most flows open at once (default 256). */
  maxFlows?: number;
  /** A flow without traffic for this long is closed (default 30 s). */
  idleMs?: number;
}

const DEFAULT_MAX_FLOWS = 256;
const DEFAULT_IDLE_MS = 30_000;
const FORBIDDEN_RETRY_MS = 10_000;

/** What the table needs of a flow; each family's record adds its own. */
export interface PingFlow<K> {
  readonly key: K;
  readonly socket: PingSocket;
  subscription: Subscription | undefined;
  lastUsed: number;
}

/**
 * The version-specific half, made once per subscription with the output.
 * `admit`, then `open` (for a new flow) and `forward` are called for the same
 * request, one after the other.
 */
export interface PingNatFamily<P, K, F extends PingFlow<K>> {
  /** Counter and failure prefix: `icmp` or `icmpv6`. */
  readonly name: string;
  readonly socketFamily: 4 | 6;
  /** The debug lines' prefix; undefined when the family logs no flow events. */
  readonly logPrefix: string | undefined;
  /** Counted when the flow limit closes a flow, if the family counts it. */
  readonly evictedCounter: string | undefined;
  /** The request's flow key, or undefined when it was answered or dropped here. */
  admit(p: P): K | undefined;
  open(key: K, p: P, socket: PingSocket, now: number): F;
  /** Sends the request on its flow's socket, and handles a failed send. */
  forward(flow: F, p: P): void;
  /** The guest's frame for a reply on the flow's socket, if any (drops counted). */
  reply(flow: F, m: PingMessage): Buffer | undefined;
  /** The guest's frame for an error the host got about the flow, if any. */
  error(flow: F, m: PingMessage): Buffer | undefined;
  flowName(flow: F): string;
  forbiddenWarning(message: string): string;
}

export function pingNatFlows<P, K, F extends PingFlow<K>>(
  ctx: StackContext,
  sockets: PingSockets,
  options: PingNatOptions,
  makeFamily: (emit: (frame: Buffer) => void) => PingNatFamily<P, K, F>,
): OperatorFunction<P, Buffer> {
  const maxFlows = Math.max(1, options.maxFlows ?? DEFAULT_MAX_FLOWS);
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const log = ctx.log;

  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const family = makeFamily((frame) => subscriber.next(frame));
      const { name, logPrefix } = family;
      const flows = new Map<K, F>();
      let sweep: Subscription | undefined;
      let warned = false;
      let forbiddenUntil = -Infinity;

      const debug = (text: string): void => {
        if (logPrefix !== undefined && log.enabled('debug')) log.debug(`${logPrefix}: ${text}`);
      };

      const closeFlow = (flow: F, why: string): void => {
        flows.delete(flow.key);
        flow.subscription?.unsubscribe();
        flow.socket.close();
        debug(`${family.flowName(flow)} closed (${why})`);
      };

      const sweepIdle = (): void => {
        sweep = undefined;
        const now = ctx.scheduler.now();
        for (const flow of [...flows.values()]) {
          if (now - flow.lastUsed >= idleMs) closeFlow(flow, 'idle');
        }
        if (flows.size > 0) scheduleSweep();
      };

      const scheduleSweep = (): void => {
        if (sweep === undefined) sweep = ctx.scheduler.schedule(sweepIdle, idleMs / 2);
      };

      const openSocket = (now: number): PingSocket | undefined => {
        if (now < forbiddenUntil) {
          ctx.counters.add(`${name}.echo.no-ping-socket`);
          return undefined;
        }
        try {
          return sockets.open(family.socketFamily);
        } catch (err) {
          onOpenFailure(err, now);
          return undefined;
        }
      };

      const onOpenFailure = (err: unknown, now: number): void => {
        if (!(err instanceof PingSocketError)) throw err;
        if (err.code !== 'forbidden') {
          ctx.counters.add(`${name}.echo.socket-error`);
          debug(err.message);
          return;
        }
        ctx.counters.add(`${name}.echo.no-ping-socket`);
        forbiddenUntil = now + FORBIDDEN_RETRY_MS;
        if (warned) return;
        warned = true;
        log.warn(family.forbiddenWarning(err.message));
      };

      const openFlow = (key: K, p: P): F | undefined => {
        const now = ctx.scheduler.now();
        const socket = openSocket(now);
        if (socket === undefined) return undefined;
        if (flows.size >= maxFlows) {
          closeFlow(flows.values().next().value as F, 'flow limit');
          if (family.evictedCounter !== undefined) ctx.counters.add(family.evictedCounter);
        }
        const flow = family.open(key, p, socket, now);
        flows.set(key, flow);
        flow.subscription = socket.messages$.subscribe({
          next: (m) => onMessage(flow, m),
          error: (err: unknown) => {
            ctx.counters.add(`${name}.nat.socket-error`);
            debug(`${family.flowName(flow)}: ${String(err)}`);
            closeFlow(flow, 'socket error');
          },
        });
        scheduleSweep();
        debug(`${family.flowName(flow)} opened`);
        return flow;
      };

      const onRequest = (p: P): void => {
        const key = family.admit(p);
        if (key === undefined) return;
        let flow = flows.get(key);
        if (flow !== undefined) {
          // Map order is least recently used first.
          flows.delete(key);
          flows.set(key, flow);
        } else {
          flow = openFlow(key, p);
          if (flow === undefined) return;
        }
        flow.lastUsed = ctx.scheduler.now();
        family.forward(flow, p);
      };

      const onMessage = (flow: F, m: PingMessage): void => {
        try {
          const frame = m.kind === 'reply' ? family.reply(flow, m) : family.error(flow, m);
          if (frame !== undefined) subscriber.next(frame);
        } catch (err) {
          countFailure(ctx, name, err);
        }
      };

      const input = source.subscribe({
        next: (p) => {
          try {
            onRequest(p);
          } catch (err) {
            countFailure(ctx, name, err);
          }
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });

      return () => {
        input.unsubscribe();
        sweep?.unsubscribe();
        sweep = undefined;
        for (const flow of [...flows.values()]) closeFlow(flow, 'stack stopped');
      };
    });
}
