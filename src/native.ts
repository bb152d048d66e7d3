/**
 * Typed access to the C++ addon (native/). Loaded once, lazily, so that
 * pure modules and their tests never need the compiled addon.
 */
import { createRequire } from 'node:module';

export interface TapConfigureRequest {
  mtu: number;
  address: number;
  netmask: number;
  gateway: number;
  mac?: Buffer;
  /** Prepare the tap for SLAAC: accept_ra 2, accept_dad 0 (native/netns.cc). */
  ipv6?: boolean;
}

export interface OpenTapRequest {
  netnsPath: string;
  usernsPath?: string;
  tapName: string;
  vnetHdr: boolean;
  configure?: TapConfigureRequest;
}

export interface NativePoller {
  /** events: 1 readable, 2 writable, 3 both, 0 stop. Returns a libuv status. */
  start(events: number): number;
  stop(): void;
  close(): void;
}

export interface NativeAddon {
  openTap(request: OpenTapRequest): number;
  readFrames(
    fd: number,
    buf: Uint8Array,
    offset: number,
    lengths: Int32Array,
    maxFrame: number,
  ): number;
  writeFrames(
    fd: number,
    frames: Uint8Array[],
    start: number,
    end: number,
    status: Int32Array,
    headerLength: number,
    headed?: Uint8Array,
  ): number;
  closeFd(fd: number): number;
  /** A non-blocking ping socket (native/ping.cc): fd, or -errno (-EACCES: group range). */
  pingOpen(family: 4 | 6): number;
  /** Sends one echo request; ttl 1..255 for this datagram, 0 for the default. Bytes or -errno. */
  pingSend(
    fd: number,
    family: 4 | 6,
    address: Uint8Array,
    message: Uint8Array,
    ttl: number,
  ): number;
  /** Reads errors, then replies: count (records of 8 in meta, 16-byte addresses) or -errno. */
  pingReceive(
    fd: number,
    buf: Uint8Array,
    offset: number,
    meta: Int32Array,
    addresses: Uint8Array,
    maxMessage: number,
  ): number;
  Poller: new (fd: number, callback: (status: number, events: number) => void) => NativePoller;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    addon = require('../../build/Release/rxslirp_native.node') as NativeAddon;
  }
  return addon;
}
