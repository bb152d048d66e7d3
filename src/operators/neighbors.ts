/**
 * The guest's IPv4 neighbours as the stack learns them: the MAC of each
 * guest address seen as the sender of an ARP packet. The stack needs one
 * only to open a connection toward the guest (port forwarding), when no
 * frame of the guest's is at hand to answer to; everything else replies
 * to the frame it got.
 *
 * `wait` registers a callback for an address whose MAC is not known yet;
 * the caller sends the ARP request and bounds the wait itself.
 */
import type { Ipv4, Mac } from '../protocols/address.js';

/** Entries at most (a /24 has 254 hosts; --cidr allows up to a /1). */
const MAX_ENTRIES = 4096;

export class Neighbors {
  private readonly macs = new Map<Ipv4, Mac>();
  private readonly waiting = new Map<Ipv4, Set<(mac: Mac) => void>>();

  get(address: Ipv4): Mac | undefined {
    return this.macs.get(address);
  }

  learn(address: Ipv4, mac: Mac): void {
    if (!this.macs.has(address) && this.macs.size >= MAX_ENTRIES) return;
    const copy = Uint8Array.from(mac.subarray(0, 6));
    this.macs.set(address, copy);
    const callbacks = this.waiting.get(address);
    if (callbacks === undefined) return;
    this.waiting.delete(address);
    for (const cb of callbacks) cb(copy);
  }

  /** Calls `cb` once `address` is learnt; the returned function cancels. */
  wait(address: Ipv4, cb: (mac: Mac) => void): () => void {
    let set = this.waiting.get(address);
    if (set === undefined) this.waiting.set(address, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0 && this.waiting.get(address) === set) this.waiting.delete(address);
    };
  }
}
