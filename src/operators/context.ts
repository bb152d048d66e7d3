/**
 * What every stack operator shares: the network's addresses, the drop
 * counters, a logger, and the scheduler that is the stack's only clock
 * (tests pass a TestScheduler and run in virtual time). Host I/O comes in
 * here too, so that tests can put fakes in its place: `pingSockets` (none
 * by default: echo to other hosts is then counted and dropped).
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import type { NetworkConfig } from '../config.js';
import { specialMac } from '../config.js';
import type { Mac } from '../protocols/address.js';
import type { PingSockets } from '../streams/ping.js';
import { Counters, logger, type Logger } from '../util/log.js';
import { Neighbors } from './neighbors.js';

export interface StackContext {
  readonly config: NetworkConfig;
  readonly counters: Counters;
  readonly log: Logger;
  readonly scheduler: SchedulerLike;
  readonly gatewayMac: Mac;
  readonly dnsMac: Mac;
  /** The guest's MACs, learnt from its ARP packets (neighbors.ts). */
  readonly neighbors: Neighbors;
  /**
   * The tap speaks virtio-net headers: frames to the guest may leave their
   * transport checksum partial and be TCP super-frames (streams/offload.ts).
   */
  readonly offload: boolean;
  /** Host ping sockets for echo to other hosts (operators/icmp-nat.ts). */
  readonly pingSockets?: PingSockets;
  /**
   * Takes a frame from the guest back for reuse once the stack is done with
   * it: nothing of it is kept, not even by a host socket. The TCP path is
   * the only caller (the bulk of the frames); every other frame is left to
   * the garbage collector. Unset: nothing is reused.
   */
  readonly releaseFrame?: (frame: Uint8Array) => void;
}

export function stackContext(
  config: NetworkConfig,
  options: {
    counters?: Counters;
    scheduler?: SchedulerLike;
    log?: Logger;
    offload?: boolean;
    pingSockets?: PingSockets;
    releaseFrame?: (frame: Uint8Array) => void;
  } = {},
): StackContext {
  return {
    config,
    counters: options.counters ?? new Counters(),
    log: options.log ?? logger('stack'),
    scheduler: options.scheduler ?? asyncScheduler,
    gatewayMac: specialMac(config.gateway),
    dnsMac: specialMac(config.dns),
    neighbors: new Neighbors(),
    offload: options.offload ?? false,
    pingSockets: options.pingSockets,
    releaseFrame: options.releaseFrame,
  };
}

/** Whether `address` is one the stack itself answers for (ARP, ping). */
export function isLocalAddress(ctx: StackContext, address: number): boolean {
  return address === ctx.config.gateway || (ctx.config.dnsEnabled && address === ctx.config.dns);
}

/** The MAC the stack uses for one of its own addresses. */
export function localMac(ctx: StackContext, address: number): Mac {
  return address === ctx.config.dns ? ctx.dnsMac : ctx.gatewayMac;
}
