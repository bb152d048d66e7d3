/**
 * virtio-net offload metadata for frames, kept beside the frames rather
 * than in them so that every operator still sees plain Ethernet frames.
 *
 * With IFF_VNET_HDR the kernel puts a 10-byte header before each frame
 * (linux/virtio_net.h): flags, gso_type, hdr_len, gso_size, csum_start,
 * csum_offset, in host byte order. We use it both ways:
 *
 * - from the guest: NEEDS_CSUM (the guest left the TCP/UDP checksum
 *   partial for us to finish) and DATA_VALID (already verified) mean the
 *   checksum needs no verification. Such frames are in `trustedChecksum`.
 *   The frame's transport checksum is then not a valid checksum: an
 *   operator that copies such a frame gets a copy that fails verification.
 * - to the guest: a producer that allocates with `headedFrame` owns the
 *   10 bytes before the frame and writes its header there with
 *   `writeVnetHeader`; the tap sink sends those bytes as the frame's
 *   header, so the kernel finishes the checksum (NEEDS_CSUM) and accepts
 *   a TCP super-frame larger than the MTU (GSO). Frames not made that way
 *   go out with an empty header and must carry full checksums.
 */

import { Recycler } from './recycler.js';

export const VNET_HDR_LENGTH = 10;

export const VnetFlag = { NeedsCsum: 1, DataValid: 2 } as const;
export const GsoType = { None: 0, TcpV4: 1, TcpV6: 4 } as const;

/** Frames whose transport checksum must not be verified (see above). */
export const trustedChecksum = new WeakSet<Uint8Array>();

/** Frames preceded by their own virtio-net header in their buffer. */
export const headedFrames = new WeakSet<Uint8Array>();

/**
 * Frames to the guest are carved from 2 MiB slabs: one ArrayBuffer per few
 * dozen super-frames instead of one each. A slab lives as long as any
 * frame cut from it, and is reused once each of its frames was handed to
 * `releaseHeadedFrame` (the tap does, after writing it, when nothing else
 * sees frames to the guest).
 */
const SLAB_SIZE = 2 << 20;
const slabs = new Recycler(SLAB_SIZE, 8);

/** A frame of `length` bytes with room for its header before it. */
export function headedFrame(length: number): Buffer {
  const need = VNET_HDR_LENGTH + length;
  const frame =
    need > SLAB_SIZE / 8
      ? Buffer.allocUnsafe(need).subarray(VNET_HDR_LENGTH)
      : slabs.take(need, VNET_HDR_LENGTH);
  headedFrames.add(frame);
  return frame;
}

/** Gives back a frame `headedFrame` made, once nothing reads it any more. */
export function releaseHeadedFrame(frame: Uint8Array): void {
  slabs.give(frame);
}

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLength: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Writes the header of a frame made by `headedFrame`. */
export function writeVnetHeader(frame: Buffer, h: VnetHeader): void {
  const at = frame.byteOffset - VNET_HDR_LENGTH;
  const view = new DataView(frame.buffer, at, VNET_HDR_LENGTH);
  view.setUint8(0, h.flags);
  view.setUint8(1, h.gsoType);
  view.setUint16(2, h.hdrLength, true);
  view.setUint16(4, h.gsoSize, true);
  view.setUint16(6, h.csumStart, true);
  view.setUint16(8, h.csumOffset, true);
}
