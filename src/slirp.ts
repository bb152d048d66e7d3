/**
 * The composition module: opens the tap in the target namespace, builds
 * the pipeline `tap -> ingress operators -> stack -> egress operators ->
 * tap`, and hands back a handle to watch and stop it. The CLI and library
 * users both start here.
 */
import type { OperatorFunction, SchedulerLike, Subscription } from 'rxjs';
import type { NetworkConfig } from './config.js';
import type { Mac } from './protocols/address.js';
import { stackContext, type StackContext } from './operators/context.js';
import { slirpStack, type StackOptions } from './operators/stack.js';
import { HostForwarder } from './operators/hostfwd.js';
import { nativePingSockets } from './streams/ping.js';
import { TapDevice } from './streams/tap.js';
import { Counters } from './util/log.js';

/** Largest frame read from the tap: any MTU the guest may set, plus Ethernet and VLAN headers. */
const MAX_FRAME = 65536 + 14 + 4;

export type FrameOperator = OperatorFunction<Buffer, Buffer>;

export interface AttachOptions {
  /** The namespace: its net namespace file and the user namespace to join. */
  netnsPath: string;
  usernsPath?: string;
  tapName?: string;
  network: NetworkConfig;
  /** Bring the tap up with network+100, netmask and default route. */
  configure?: boolean;
  mac?: Mac;
  /** User operators on frames from the guest, before the stack. */
  ingress?: FrameOperator[];
  /** User operators on frames to the guest, after the stack. */
  egress?: FrameOperator[];
  scheduler?: SchedulerLike;
  /** Settings of the UDP NAT and the DNS forwarder's upstream. */
  stack?: StackOptions;
  /**
   * virtio-net offloads on the tap (default true): the guest hands over
   * TCP super-frames with checksums left to us, and takes them back.
   */
  offload?: boolean;
  /**
   * Reuse frame memory on the TCP path instead of leaving it to the garbage
   * collector (default false; streams/tap.ts says what it allows). Taken
   * only when there are no ingress or egress operators, and only safe
   * when nothing else subscribes to `tap.frames$`.
   */
  recycle?: boolean;
}

export interface Slirp {
  readonly tap: TapDevice;
  readonly context: StackContext;
  readonly counters: Counters;
  /** Port forwards from the host; `execute` answers control-socket requests. */
  readonly hostfwd: HostForwarder;
  /** Resolves when the pipeline ends (tap closed or failed). */
  readonly done: Promise<void>;
  close(): void;
}

/** Runs the stack over an already open tap (tests use this with a fake). */
export function runStack(
  frames$: TapDevice['frames$'],
  write: (frame: Buffer) => void,
  ctx: StackContext,
  ingress: FrameOperator[] = [],
  egress: FrameOperator[] = [],
  stack: StackOptions = {},
): Subscription {
  const ops: FrameOperator[] = [...ingress, slirpStack(ctx, stack), ...egress];
  return (frames$.pipe as (...o: FrameOperator[]) => typeof frames$).apply(frames$, ops).subscribe({
    next: write,
    error: (err: unknown) => ctx.log.error(`pipeline failed: ${String(err)}`),
  });
}

export function attach(options: AttachOptions): Slirp {
  const { network } = options;
  const tap = TapDevice.open(
    {
      netnsPath: options.netnsPath,
      usernsPath: options.usernsPath,
      tapName: options.tapName ?? 'tap0',
      vnetHdr: options.offload ?? true,
      configure: options.configure
        ? {
            mtu: network.mtu,
            address: network.recommended,
            netmask: network.netmask,
            gateway: network.gateway,
            mac: options.mac ? Buffer.from(options.mac) : undefined,
            ipv6: network.ipv6 !== undefined,
          }
        : undefined,
    },
    MAX_FRAME,
  );
  const counters = new Counters();
  const recycle = options.recycle === true && !options.ingress?.length && !options.egress?.length;
  tap.recycle = recycle;
  const context = stackContext(network, {
    counters,
    scheduler: options.scheduler,
    offload: options.offload ?? true,
    pingSockets: nativePingSockets,
    releaseFrame: recycle ? (frame) => tap.release(frame) : undefined,
  });
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const hostfwd = new HostForwarder(context);
  const subscription = runStack(
    tap.frames$,
    (f) => tap.write(f),
    context,
    options.ingress,
    options.egress,
    { ...options.stack, hostfwd },
  );
  subscription.add(resolveDone);
  return {
    tap,
    context,
    counters,
    hostfwd,
    done,
    close() {
      hostfwd.closeAll();
      subscription.unsubscribe();
      tap.close();
    },
  };
}
