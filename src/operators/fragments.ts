/**
 * IPv4 fragments on both sides of the stack.
 *
 * `ipv4Reassembly(ctx)` sits right after IPv4 validation: whole packets
 * pass untouched; fragments go into an Ipv4Reassembler (RFC 791, RFC 815;
 * its module comment has the policy on overlaps and duplicates), and the
 * datagram comes out as one packet, in a new frame carrying the Ethernet
 * header of the fragment that completed it, once its last hole is filled.
 * Memory is bounded by the reassembler (4 MiB and 256 datagrams by
 * default); datagrams time out 30 s after their first fragment. Time comes
 * from ctx.scheduler: one scheduled action, moved to the reassembler's
 * next deadline whenever that changes. Every fragment thrown away is
 * counted under its reason (`ipv4.fragment.timeout`, `.evicted`,
 * `.overlap`, `.duplicate`, `.inconsistent`, `.oversize`, `.bad-length`,
 * `.too-large`); `ipv4.fragment.reassembled` counts datagrams made whole.
 * When a datagram times out after its offset-zero fragment came, the guest
 * gets an ICMP time exceeded, code 1 (RFC 792, RFC 1122 3.3.2), from the
 * gateway, quoting that fragment's header and first 8 data bytes, unless
 * RFC 1122 3.2.2 forbids an error about it (an ICMP error, a broadcast or
 * multicast, the subnet's broadcast included); each one sent is counted as
 * `ipv4.fragment.time-exceeded-sent`. Without the first fragment nothing
 * is sent: the quote would not say which datagram it was. The error frames
 * go to `options.toGuest`; without it none are sent (ipv4Demux wires it
 * into its output).
 *
 * The timer and frame glue is `reassembly(ctx, family)`, which ipv6.ts's
 * `ipv6Reassembly` shares; `emitFragments` is the fragmenters' shared tail.
 *
 * `ipv4Fragmenter(ctx)` is the last step towards the guest: an IPv4 frame
 * longer than the MTU (ctx.config.mtu) without DF is split with
 * fragmentIpv4, each fragment in a frame of its own with the original
 * Ethernet header; `ipv4.fragment.sent` counts the fragments. Everything
 * else passes untouched, at the cost of one length comparison. A frame
 * with DF set is its producer's business and passes as it is: TCP sizes
 * its segments by MSS, or hands the kernel a GSO super-frame larger than
 * the MTU on purpose (the stack's UDP, DNS and DHCP replies never set DF).
 */
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { ETH_HEADER_LENGTH, EtherType, etherType } from '../protocols/ethernet.js';
import { Ipv4Reassembler, fragmentIpv4, type FragmentDrop } from '../protocols/fragments.js';
import type { ReassemblyOptions } from '../protocols/fragments.js';
import { Icmpv4Type, TimeExceededCode } from '../protocols/icmpv4.js';
import { Ipv4Packet } from '../protocols/ipv4.js';
import type { StackContext } from './context.js';
import { icmpErrorFrame } from './frames.js';
import { countFailure, handler } from './handler.js';

/** The reassembler's bounds, and where ICMP errors about timeouts go. */
export interface ReassemblyOperatorOptions extends ReassemblyOptions {
  /** Takes the ICMP time exceeded frames; without it none are sent. */
  toGuest?: (frame: Buffer) => void;
}

export function ipv4Reassembly(
  ctx: StackContext,
  options: ReassemblyOperatorOptions = {},
): OperatorFunction<Ipv4Packet, Ipv4Packet> {
  const { network, netmask } = ctx.config;
  const subnetBroadcast = (network | ~netmask) >>> 0;
  return reassembly(
    ctx,
    {
      name: 'ipv4',
      isFragment: (packet) => packet.isFragment,
      reassembler: () => new Ipv4Reassembler(options),
      parse: (frame) => Ipv4Packet.parse(frame, ETH_HEADER_LENGTH),
      timeExceeded: (first) => {
        if (first.dst === subnetBroadcast) return undefined;
        const code = TimeExceededCode.ReassemblyTimeExceeded;
        return icmpErrorFrame(ctx, first, Icmpv4Type.TimeExceeded, code);
      },
    },
    options.toGuest,
  );
}

/**
 * `input` then `route`, with the frames `input` sends the guest itself
 * (the time exceeded about a reassembly that timed out) among the routes'
 * own: ipv4Demux and ipv6Demux.
 */
export function inputThenRoute<P>(
  input: (toGuest: (frame: Buffer) => void) => OperatorFunction<Buffer, P>,
  route: OperatorFunction<P, Buffer>,
): OperatorFunction<Buffer, Buffer> {
  return (source) =>
    new Observable<Buffer>((subscriber) =>
      source
        .pipe(
          input((frame) => subscriber.next(frame)),
          route,
        )
        .subscribe(subscriber),
    );
}

/** A reassembler of either IP version (Ipv4Reassembler, Ipv6Reassembler). */
export interface PacketReassembler<P> {
  add(packet: P, now: number): { packet?: Uint8Array; drops: readonly FragmentDrop[] };
  expire(now: number): FragmentDrop[];
  nextDeadline(): number | undefined;
}

/** What `reassembly` needs of one IP version. */
export interface ReassemblyFamily<P extends { readonly buf: Uint8Array }> {
  /** Counter, failure and log prefix: `ipv4` or `ipv6`. */
  readonly name: string;
  isFragment(packet: P): boolean;
  /** A fresh reassembler, one per subscription. */
  reassembler(): PacketReassembler<P>;
  /** The packet in a frame made whole. */
  parse(frame: Buffer): P;
  /**
   * The ICMP time exceeded (code 1) about `first`, the offset-zero fragment
   * of a datagram that timed out, or undefined where no error may be sent.
   */
  timeExceeded(first: P): Buffer | undefined;
}

/**
 * Whole packets pass untouched; fragments go to the family's reassembler,
 * timed on ctx.scheduler with one scheduled action at its next deadline,
 * and a packet made whole leaves in a new frame carrying the Ethernet
 * header of the fragment that completed it. Drops are counted under their
 * codes; `<name>.fragment.reassembled` counts packets made whole. A
 * timeout that carries the offset-zero fragment sends `toGuest` the
 * family's time exceeded about it, counted as
 * `<name>.fragment.time-exceeded-sent`.
 */
export function reassembly<P extends { readonly buf: Uint8Array }>(
  ctx: StackContext,
  family: ReassemblyFamily<P>,
  toGuest?: (frame: Buffer) => void,
): OperatorFunction<P, P> {
  const { name } = family;
  return (source) =>
    new Observable<P>((subscriber) => {
      const reassembler = family.reassembler();
      let timer: Subscription | undefined;
      let timerAt = Infinity;

      // Rare (one per datagram that times out), so the frame is rebuilt
      // whole and parsed again rather than quoted from kept pieces.
      const timeExceeded = (
        first: NonNullable<FragmentDrop['first']>,
        send: (frame: Buffer) => void,
      ): void => {
        const frame = Buffer.allocUnsafe(first.header.length + first.data.length);
        frame.set(first.header);
        frame.set(first.data, first.header.length);
        const error = family.timeExceeded(family.parse(frame));
        if (error === undefined) return;
        ctx.counters.add(`${name}.fragment.time-exceeded-sent`);
        send(error);
      };

      const count = (drops: readonly FragmentDrop[]): void => {
        for (const d of drops) {
          ctx.counters.add(d.code, d.fragments);
          if (ctx.log.enabled('debug')) {
            ctx.log.debug(
              `${name}: dropped ${d.fragments} fragment(s), ${d.bytes} bytes: ${d.code}`,
            );
          }
          if (d.reason !== 'timeout' || d.first === undefined || toGuest === undefined) continue;
          try {
            timeExceeded(d.first, toGuest);
          } catch (err) {
            countFailure(ctx, name, err);
          }
        }
      };

      // One scheduled action, always for the reassembler's next deadline.
      const arm = (): void => {
        const deadline = reassembler.nextDeadline() ?? Infinity;
        if (deadline === timerAt) return;
        timer?.unsubscribe();
        timer = undefined;
        timerAt = deadline;
        if (deadline === Infinity) return;
        const delay = Math.max(0, deadline - ctx.scheduler.now());
        timer = ctx.scheduler.schedule(() => {
          timer = undefined;
          timerAt = Infinity;
          count(reassembler.expire(ctx.scheduler.now()));
          arm();
        }, delay);
      };

      const reassemble = (packet: P): void => {
        const result = reassembler.add(packet, ctx.scheduler.now());
        count(result.drops);
        arm();
        if (result.packet === undefined) return;
        const frame = Buffer.allocUnsafe(ETH_HEADER_LENGTH + result.packet.length);
        frame.set(packet.buf.subarray(0, ETH_HEADER_LENGTH));
        frame.set(result.packet, ETH_HEADER_LENGTH);
        ctx.counters.add(`${name}.fragment.reassembled`);
        subscriber.next(family.parse(frame));
      };

      const subscription = source.subscribe({
        next: (packet) => {
          if (!family.isFragment(packet)) {
            subscriber.next(packet);
            return;
          }
          try {
            reassemble(packet);
          } catch (err) {
            countFailure(ctx, name, err);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        timer?.unsubscribe();
        subscription.unsubscribe();
      };
    });
}

export function ipv4Fragmenter(ctx: StackContext): OperatorFunction<Buffer, Buffer> {
  const mtu = ctx.config.mtu;
  return handler<Buffer, Buffer>(ctx, 'ipv4', (frame, emit) => {
    if (frame.length <= ETH_HEADER_LENGTH + mtu || etherType(frame) !== EtherType.IPv4) {
      emit(frame);
      return;
    }
    const packet = Ipv4Packet.parse(frame, ETH_HEADER_LENGTH);
    if (packet.dontFragment) {
      emit(frame);
      return;
    }
    const fragments = fragmentIpv4(packet, mtu);
    ctx.counters.add('ipv4.fragment.sent', fragments.length);
    emitFragments(frame, fragments, emit);
  });
}

/** Each fragment in a frame of its own, with the Ethernet header of `frame`. */
export function emitFragments(
  frame: Buffer,
  fragments: readonly Uint8Array[],
  emit: (frame: Buffer) => void,
): void {
  for (const fragment of fragments) {
    const out = Buffer.allocUnsafe(ETH_HEADER_LENGTH + fragment.length);
    out.set(frame.subarray(0, ETH_HEADER_LENGTH));
    out.set(fragment, ETH_HEADER_LENGTH);
    emit(out);
  }
}
