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
