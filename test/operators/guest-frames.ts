/**
 * Frames for operator tests: what a guest at 10.0.2.100 (MAC
 * 02:00:00:00:00:01) would send, built with the codecs, and a harness that
 * runs an operator over a Subject on a virtual clock.
 */
import { Subject, VirtualTimeScheduler, type OperatorFunction } from 'rxjs';
import { networkConfig, type NetworkConfig } from '../../src/config.js';
import { stackContext, type StackContext } from '../../src/operators/context.js';
import { BROADCAST_MAC } from '../../src/protocols/address.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../../src/protocols/ethernet.js';
import { IpProtocol, Ipv4Packet, writeIpv4Header } from '../../src/protocols/ipv4.js';
import { UDP_HEADER, writeUdpV4 } from '../../src/protocols/udp.js';

export const GUEST_MAC = Uint8Array.of(2, 0, 0, 0, 0, 1);
export const GUEST_IP = 0x0a000264;
export const GATEWAY = 0x0a000202;
export const DNS = 0x0a000203;
export const GATEWAY_MAC = Uint8Array.of(0x52, 0x55, 10, 0, 2, 2);
export { BROADCAST_MAC };

export interface UdpFrameOptions {
  src?: number;
  dst?: number;
  srcPort?: number;
  dstPort?: number;
  id?: number;
  dontFragment?: boolean;
  dstMac?: Uint8Array;
}

/** An Ethernet frame holding one IPv4/UDP datagram from the guest. */
export function udpFrame(payload: Uint8Array, o: UdpFrameOptions = {}): Buffer {
  const src = o.src ?? GUEST_IP;
  const dst = o.dst ?? GATEWAY;
  const udpLength = UDP_HEADER + payload.length;
  const frame = Buffer.alloc(ETH_HEADER_LENGTH + 20 + udpLength);
  writeEthernet(frame, 0, o.dstMac ?? GATEWAY_MAC, GUEST_MAC, EtherType.IPv4);
  writeIpv4Header(frame, ETH_HEADER_LENGTH, {
    src,
    dst,
    protocol: IpProtocol.UDP,
    payloadLength: udpLength,
    identification: o.id ?? 0x1234,
    dontFragment: o.dontFragment ?? false,
  });
  writeUdpV4(frame, ETH_HEADER_LENGTH + 20, src, dst, o.srcPort ?? 40000, o.dstPort ?? 7, payload);
  return frame;
}

/** Wraps IPv4 packets (views without Ethernet) in frames from the guest. */
export function framesOf(packets: Uint8Array[], dstMac: Uint8Array = GATEWAY_MAC): Buffer[] {
  return packets.map((p) => {
    const f = Buffer.alloc(ETH_HEADER_LENGTH + p.length);
    writeEthernet(f, 0, dstMac, GUEST_MAC, EtherType.IPv4);
    f.set(p, ETH_HEADER_LENGTH);
    return f;
  });
}

export function ipOf(frame: Uint8Array): Ipv4Packet {
  return Ipv4Packet.parse(frame, ETH_HEADER_LENGTH);
}

/** A payload of `n` bytes, each byte a function of its index. */
export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

export interface Rig<I, O> {
  ctx: StackContext;
  scheduler: VirtualTimeScheduler;
  input: Subject<I>;
  out: O[];
  /** Runs every timer due at or before `ms` and moves the clock there. */
  advanceTo(ms: number): void;
  counter(name: string): number;
}

/** Subscribes `op` to a Subject, on a virtual clock starting at 0. */
export function rig<I, O>(
  make: (ctx: StackContext) => OperatorFunction<I, O>,
  config: NetworkConfig = networkConfig(),
  extra: Partial<Parameters<typeof stackContext>[1]> = {},
): Rig<I, O> {
  const scheduler = new VirtualTimeScheduler();
  const ctx = stackContext(config, { scheduler, ...extra });
  const input = new Subject<I>();
  const out: O[] = [];
  make(ctx)(input).subscribe({
    next: (o) => out.push(o),
    error: (e: unknown) => {
      throw e;
    },
  });
  return {
    ctx,
    scheduler,
    input,
    out,
    advanceTo(ms) {
      scheduler.maxFrames = ms;
      scheduler.flush();
      scheduler.frame = Math.max(scheduler.frame, ms);
    },
    counter: (name) => ctx.counters.get(name),
  };
}
