/**
 * `pcap(path)`: a pass-through operator that writes every frame to a pcap
 * file (the classic libpcap format, LINKTYPE_ETHERNET) that tshark,
 * tcpdump and Wireshark read. Put it on the ingress side to see what the
 * guest sent, on the egress side to see what it received, or on both with
 * one shared writer from `pcapWriter`.
 *
 * Timestamps come from the scheduler when one is given (virtual time in
 * tests), else from the process's monotonic high-resolution clock anchored
 * to the wall clock, so records carry real microseconds rather than the
 * millisecond steps of Date.now(). Frames are
 * handed to the file stream as they are, without a copy: frames are never
 * mutated once emitted. The file is closed when the stream finalizes.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { Observable, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';

const MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;

export interface PcapOptions {
  /** Bytes kept of each frame (default 262144, what tcpdump uses). */
  snaplen?: number;
  scheduler?: SchedulerLike;
}

export interface PcapWriter {
  write(frame: Uint8Array): void;
  /** Closes the file once every user has released it. */
  release(): void;
  retain(): void;
}

/** A writer that several `pcap` operators can share (ingress and egress). */
export function pcapWriter(path: string, options: PcapOptions = {}): PcapWriter {
  const snaplen = options.snaplen ?? 262144;
  const scheduler = options.scheduler;
  const clock = scheduler
    ? () => scheduler.now()
    : () => performance.timeOrigin + performance.now();
  const out: WriteStream = createWriteStream(path);
  const header = Buffer.alloc(24);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(snaplen, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  out.write(header);
  let users = 0;
  return {
    write(frame) {
      const now = clock();
      const record = Buffer.allocUnsafe(16);
      const kept = Math.min(frame.length, snaplen);
      const seconds = Math.floor(now / 1000);
      record.writeUInt32LE(seconds, 0);
      record.writeUInt32LE(Math.min(999_999, Math.floor((now - seconds * 1000) * 1000)), 4);
      record.writeUInt32LE(kept, 8);
      record.writeUInt32LE(frame.length, 12);
      out.write(record);
      out.write(kept === frame.length ? frame : frame.subarray(0, kept));
    },
    retain() {
      users++;
    },
    release() {
      if (--users <= 0) out.end();
    },
  };
}

/** Writes each frame that passes to `target` (a path or a shared writer). */
export function pcap<T extends Uint8Array>(
  target: string | PcapWriter,
  options: PcapOptions = {},
): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const writer = typeof target === 'string' ? pcapWriter(target, options) : target;
      writer.retain();
      const subscription = source.subscribe({
        next: (frame) => {
          writer.write(frame);
          subscriber.next(frame);
        },
        error: (e) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return () => {
        subscription.unsubscribe();
        writer.release();
      };
    });
}
