/**
 * The UDP NAT's flow table, for both IP versions: one connected host socket
 * per guest 4-tuple, flows kept in least-recently-used order and expired on
 * ctx.scheduler, at most `maxFlows` at once.
 *
 * What differs between IPv4 (udp.ts) and IPv6 (udp6.ts) sits behind
 * `UdpNatFamily`: the flow key, the refusals made before a flow opens, the
 * NAT target, the frames to the guest (datagrams and ICMP errors), the quote
 * kept for those errors, and the debug lines. This module owns the rest: the
 * table, the sockets, the one idle timer, and the counters
 * `<name>.nat.flow-<opened|expired|closed|failed>`, `<name>.nat.flow-limit`,
 * `<name>.nat.too-long`, `<name>.nat.host-error.<code>` and
 * `<name>.nat.icmp-sent`. It never parses and never builds a frame itself.
 */
import { Observable, Subject, type OperatorFunction, type Subscription } from 'rxjs';
import { ethSource } from '../protocols/ethernet.js';
import type { UdpDatagram } from '../protocols/udp.js';
import {
  udpConnection,
  type UdpSocketEvent,
  type UdpSocketFactory,
} from '../streams/udp-socket.js';
import type { StackContext } from './context.js';
import { countFailure } from './handler.js';
import type { NatTarget } from './nat.js';

export interface UdpNatOptions {
  /** How host sockets are opened (tests pass a fake). */
  openSocket?: UdpSocketFactory;
  /** Flows at most (default 1024). */
  maxFlows?: number;
  /** A flow's life past its last datagram, in ms (default 60 s). */
  idleTimeoutMs?: number;
}

/** A validated datagram from the guest, of either IP version. */
export interface UdpNatPacket<Ip extends { readonly buf: Uint8Array }> {
  readonly ip: Ip;
  readonly udp: UdpDatagram;
}

/** One guest 4-tuple and its host socket; `A` is the family's address type. */
export interface UdpFlow<A> {
  readonly key: string;
  readonly guestMac: Uint8Array;
  readonly guest: A;
  readonly guestPort: number;
  /** The destination as the guest wrote it (replies come from here). */
  readonly remote: A;
  readonly remotePort: number;
  readonly outgoing: Subject<Uint8Array>;
  subscription: Subscription | undefined;
  lastActive: number;
  /** The guest's last datagram's headers, quoted by ICMP errors. */
  readonly quote: Uint8Array;
  quoteLength: number;
}

/** The IP-version-specific half of the NAT, made once per subscription. */
export interface UdpNatFamily<Ip extends { readonly buf: Uint8Array }, A> {
  /** Counter, failure and log prefix: `udp` or `udp6`. */
  readonly name: string;
  readonly socketFamily: 4 | 6;
  /** The host's local address for flows (--outbound-addr), if any. */
  readonly localAddress: string | undefined;
  readonly maxPayload: number;
  readonly quoteSize: number;
  /** Whether the flow key is readable, so debug lines may start with it. */
  readonly keyed: boolean;
  key(p: UdpNatPacket<Ip>): string;
  /** Counts and logs a datagram refused before any NAT lookup; true if refused. */
  refuse(p: UdpNatPacket<Ip>, key: string): boolean;
  target(ip: Ip): NatTarget;
  /** Copies of the guest's (source) and the remote's (destination) address. */
  guest(ip: Ip): A;
  remote(ip: Ip): A;
  /** The ICMP net unreachable answering a datagram to the refused gateway. */
  netUnreachable(ip: Ip): Buffer | undefined;
  /** Keeps the quote ICMP errors about this flow will carry. */
  keepQuote(flow: UdpFlow<A>, ip: Ip): void;
  datagramFrame(flow: UdpFlow<A>, data: Uint8Array): Buffer;
  /** The ICMP error a host socket error becomes, if any. */
  errorFrame(flow: UdpFlow<A>, code: string): Buffer | undefined;
  openedLine(key: string, address: string, port: number): string;
  hostErrorLine(flow: UdpFlow<A>, code: string): string;
}

export function udpNatFlows<Ip extends { readonly buf: Uint8Array }, A>(
  ctx: StackContext,
  options: UdpNatOptions,
  makeFamily: () => UdpNatFamily<Ip, A>,
): OperatorFunction<UdpNatPacket<Ip>, Buffer> {
  const openSocket = options.openSocket ?? udpConnection;
  const maxFlows = options.maxFlows ?? 1024;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;

  return (source) =>
    new Observable<Buffer>((subscriber) => {
      const family = makeFamily();
      const { name } = family;
      const flows = new Map<string, UdpFlow<A>>();
      let timer: Subscription | undefined;

      const debug = (text: string): void => {
        if (ctx.log.enabled('debug')) ctx.log.debug(`${name}: ${text}`);
      };
      const debugKeyed = (key: string, text: string): void => {
        if (family.keyed) debug(`${key}: ${text}`);
      };

      const close = (flow: UdpFlow<A>, why: string): void => {
        flows.delete(flow.key);
        flow.subscription?.unsubscribe();
        flow.outgoing.complete();
        ctx.counters.add(`${name}.nat.flow-${why}`);
        debugKeyed(flow.key, `flow ${why}`);
      };

      // One scheduled action, at the least recently used flow's deadline.
      const arm = (): void => {
        if (timer !== undefined) return;
        const oldest = flows.values().next().value;
        if (oldest === undefined) return;
        const delay = Math.max(0, oldest.lastActive + idleTimeoutMs - ctx.scheduler.now());
        timer = ctx.scheduler.schedule(() => {
          timer = undefined;
          const now = ctx.scheduler.now();
          for (const flow of flows.values()) {
            if (flow.lastActive + idleTimeoutMs > now) break;
            close(flow, 'expired');
          }
          arm();
        }, delay);
      };

      const touch = (flow: UdpFlow<A>): void => {
        flow.lastActive = ctx.scheduler.now();
        flows.delete(flow.key);
        flows.set(flow.key, flow);
      };

      const toGuest = (flow: UdpFlow<A>, data: Buffer): void => {
        if (data.length > family.maxPayload) {
          ctx.counters.add(`${name}.nat.too-long`);
          return;
        }
        touch(flow);
        subscriber.next(family.datagramFrame(flow, data));
      };

      const hostError = (flow: UdpFlow<A>, code: string): void => {
        ctx.counters.add(`${name}.nat.host-error.${code}`);
        debug(family.hostErrorLine(flow, code));
        const frame = family.errorFrame(flow, code);
        if (frame === undefined) return;
        ctx.counters.add(`${name}.nat.icmp-sent`);
        subscriber.next(frame);
      };

      const onHost = (flow: UdpFlow<A>, event: UdpSocketEvent): void => {
        try {
          if (event.kind === 'message') toGuest(flow, event.data);
          else hostError(flow, event.code);
        } catch (err) {
          countFailure(ctx, name, err);
        }
      };

      // A flow for the datagram, or undefined with the refusal counted.
      const admit = (p: UdpNatPacket<Ip>, key: string): string | undefined => {
        if (family.refuse(p, key)) return undefined;
        const target = family.target(p.ip);
        if (target.kind === 'unreachable') {
          ctx.counters.add(`${name}.nat.${target.reason}`);
          debugKeyed(key, `dropped: ${target.reason}`);
          if (target.reason !== 'host-loopback-disabled') return undefined;
          const icmp = family.netUnreachable(p.ip);
          if (icmp !== undefined) subscriber.next(icmp);
          return undefined;
        }
        if (flows.size >= maxFlows) {
          ctx.counters.add(`${name}.nat.flow-limit`);
          debugKeyed(key, `flow limit ${maxFlows} reached`);
          return undefined;
        }
        return target.address;
      };

      const connect = (flow: UdpFlow<A>, address: string): void => {
        const local = family.localAddress;
        const to = {
          address,
          port: flow.remotePort,
          family: family.socketFamily,
          ...(local !== undefined && { localAddress: local }),
        };
        flow.subscription = openSocket(to, flow.outgoing).subscribe({
          next: (event) => onHost(flow, event),
          error: (err: unknown) => {
            countFailure(ctx, name, err);
            if (flows.get(flow.key) === flow) close(flow, 'failed');
          },
        });
      };

      const open = (p: UdpNatPacket<Ip>, key: string): UdpFlow<A> | undefined => {
        const address = admit(p, key);
        if (address === undefined) return undefined;
        const { ip, udp } = p;
        const flow: UdpFlow<A> = {
          key,
          guestMac: Uint8Array.from(ethSource(ip.buf)),
          guest: family.guest(ip),
          guestPort: udp.srcPort,
          remote: family.remote(ip),
          remotePort: udp.dstPort,
          outgoing: new Subject<Uint8Array>(),
          subscription: undefined,
          lastActive: ctx.scheduler.now(),
          quote: new Uint8Array(family.quoteSize),
          quoteLength: 0,
        };
        flows.set(key, flow);
        ctx.counters.add(`${name}.nat.flow-opened`);
        debug(family.openedLine(key, address, udp.dstPort));
        connect(flow, address);
        arm();
        return flow;
      };

      const fromGuest = (p: UdpNatPacket<Ip>): void => {
        const key = family.key(p);
        const flow = flows.get(key) ?? open(p, key);
        if (flow === undefined) return;
        touch(flow);
        family.keepQuote(flow, p.ip);
        flow.outgoing.next(p.udp.payload);
      };

      const subscription = source.subscribe({
        next: (p) => {
          try {
            fromGuest(p);
          } catch (err) {
            countFailure(ctx, name, err);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        subscription.unsubscribe();
        timer?.unsubscribe();
        for (const flow of [...flows.values()]) close(flow, 'closed');
      };
    });
}
