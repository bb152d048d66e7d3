/**
 * One UDP port forward (`add_hostfwd` with proto "udp"): its bound host
 * socket, and the host peers it has seen, each with a gateway port.
 *
 * ## Theory of operation
 *
 * The host socket (streams/udp-socket.ts, `bindUdp`) is bound on
 * host_addr:host_port and connected to nothing. Each distinct host peer
 * (address, port) that writes to it gets a source as the guest will see
 * it (forward-source.ts): the peer itself, as slirp4netns does, where the
 * guest can answer it through us; else the gateway address (network+2)
 * with the peer's port if that is free, or a free one of 49152..65535
 * (`portTaken` says which gateway ports the TCP forwards and the other UDP
 * forwards already use toward the same guest port). The peer's datagrams
 * go to guest_addr:guest_port from that source, one IPv4 datagram each;
 * the stack fragments those over the MTU on their way out (fragments.ts).
 *
 * - toward the guest: needs the guest's MAC. While it is unknown the
 *   datagrams wait (at most PENDING_LIMIT, then `hostfwd.udp.pending-limit`)
 *   and `resolveMac` asks by ARP; when it gives up they are dropped as
 *   `hostfwd.udp.arp-timeout`.
 * - toward the host: a datagram from guest_addr:guest_port to a peer's
 *   source (`owns`) is sent to that peer from the forward's socket.
 *   hostfwd.ts routes it here ahead of the UDP NAT.
 *
 * A peer lives `idleTimeoutMs` (60 s, as UDP NAT flows) past its last
 * datagram in either direction; peers are kept in least-recently-used order
 * and one action on ctx.scheduler fires at the oldest one's deadline.
 * `close` closes the socket and forgets every peer.
 */
import type { Subscription } from 'rxjs';
import type { Ipv4, Mac } from '../protocols/address.js';
import type { HostfwdSpec } from '../protocols/api.js';
import type { HostUdpSocket, UdpPeer } from '../streams/udp-socket.js';
import type { StackContext } from './context.js';
import { EphemeralPorts, forwardClient, forwardSource } from './forward-source.js';
import { UDP_MAX_PAYLOAD_V4, ipIdSource, udpFrame, type UdpPacket } from './udp.js';

/** Datagrams from the host held while the guest's MAC is asked for. */
const PENDING_LIMIT = 64;
export const UDP_FORWARD_IDLE_MS = 60_000;

/** What a forward needs from the forwarder that owns it. */
export interface UdpForwardHooks {
  /** A frame to the guest. */
  emit(frame: Buffer): void;
  /** Whether another forward uses this gateway port toward the same guest port. */
  portTaken(port: number): boolean;
  /** Asks the guest's MAC; calls exactly one of the two callbacks. */
  resolveMac(address: Ipv4, then: (mac: Mac) => void, giveUp: () => void): void;
}

interface Peer {
  readonly key: string;
  readonly host: UdpPeer;
  /** Where its datagrams come from as the guest sees them. */
  readonly source: Ipv4;
  readonly sourcePort: number;
  lastActive: number;
}

export class UdpForward {
  private socket: HostUdpSocket | undefined;
  /** Peers by `address:port`, least recently used first. */
  private readonly peers = new Map<string, Peer>();
  /** Peers by the source the guest sees (`address:port`). */
  private readonly bySource = new Map<string, Peer>();
  private pending: { data: Buffer; from: UdpPeer }[] = [];
  private timer: Subscription | undefined;
  private readonly ports = new EphemeralPorts();
  private readonly nextId = ipIdSource();
  private closed = false;

  constructor(
    private readonly ctx: StackContext,
    readonly spec: HostfwdSpec,
    private readonly hooks: UdpForwardHooks,
    private readonly idleTimeoutMs = UDP_FORWARD_IDLE_MS,
  ) {}

  attach(socket: HostUdpSocket): void {
    this.socket = socket;
  }

  /** Whether a peer is shown to the guest as gateway:port. */
  usesPort(port: number): boolean {
    return this.bySource.has(`${this.ctx.config.gateway}:${port}`);
  }

  /** Whether a datagram from the guest is an answer to one of our peers. */
  owns({ ip, udp }: UdpPacket): boolean {
    return (
      ip.src === this.spec.guestAddr &&
      udp.srcPort === this.spec.guestPort &&
      this.bySource.has(`${ip.dst}:${udp.dstPort}`)
    );
  }

  fromGuest({ ip, udp }: UdpPacket): void {
    const peer = this.bySource.get(`${ip.dst}:${udp.dstPort}`);
    if (peer === undefined || this.socket === undefined) return;
    this.touch(peer);
    this.socket.send(udp.payload, peer.host);
  }

  fromHost(data: Buffer, from: UdpPeer): void {
    const counters = this.ctx.counters;
    if (this.closed) return;
    if (data.length > UDP_MAX_PAYLOAD_V4) return counters.add('hostfwd.udp.too-long');
    const mac = this.ctx.neighbors.get(this.spec.guestAddr);
    if (mac !== undefined) return this.toGuest(data, from, mac);
    if (this.pending.length >= PENDING_LIMIT) return counters.add('hostfwd.udp.pending-limit');
    this.pending.push({ data, from });
    if (this.pending.length === 1) this.resolve();
  }

  close(): void {
    this.closed = true;
    this.timer?.unsubscribe();
    this.socket?.close();
    this.peers.clear();
    this.bySource.clear();
    this.pending = [];
  }

  private resolve(): void {
    const flush = (mac: Mac): void => {
      const pending = this.pending;
      this.pending = [];
      if (!this.closed) for (const p of pending) this.toGuest(p.data, p.from, mac);
    };
    const giveUp = (): void => {
      this.ctx.counters.add('hostfwd.udp.arp-timeout', this.pending.length);
      this.pending = [];
    };
    this.hooks.resolveMac(this.spec.guestAddr, flush, giveUp);
  }

  private toGuest(data: Buffer, from: UdpPeer, guestMac: Mac): void {
    const ctx = this.ctx;
    const peer = this.peers.get(`${from.address}:${from.port}`) ?? this.open(from);
    if (peer === undefined) return;
    this.touch(peer);
    const frame = udpFrame(
      {
        dstMac: guestMac,
        srcMac: ctx.gatewayMac,
        src: peer.source,
        srcPort: peer.sourcePort,
        dst: this.spec.guestAddr,
        dstPort: this.spec.guestPort,
        identification: this.nextId(),
      },
      data,
    );
    this.hooks.emit(frame);
  }

  private open(host: UdpPeer): Peer | undefined {
    const source = this.sourceFor(host);
    if (source === undefined) {
      this.ctx.counters.add('hostfwd.udp.no-port');
      return undefined;
    }
    const key = `${host.address}:${host.port}`;
    const [address, port] = source;
    const peer: Peer = {
      key,
      host,
      source: address,
      sourcePort: port,
      lastActive: this.ctx.scheduler.now(),
    };
    this.peers.set(key, peer);
    this.bySource.set(`${address}:${port}`, peer);
    this.ctx.counters.add('hostfwd.udp.peer-opened');
    if (this.ctx.log.enabled('debug')) {
      this.ctx.log.debug(`hostfwd: udp peer ${key} is ${address}:${port} to the guest`);
    }
    this.arm();
    return peer;
  }

  /** The peer itself where the guest can answer it, else a gateway port. */
  private sourceFor(host: UdpPeer): [Ipv4, number] | undefined {
    const gateway = this.ctx.config.gateway;
    const free = (address: Ipv4, port: number): boolean =>
      !this.bySource.has(`${address}:${port}`) &&
      (address !== gateway || !this.hooks.portTaken(port));
    const source = forwardSource(
      this.ctx,
      forwardClient(host.address, host.port),
      free,
      this.ports,
    );
    return source && [source.address, source.port];
  }

  private touch(peer: Peer): void {
    peer.lastActive = this.ctx.scheduler.now();
    this.peers.delete(peer.key);
    this.peers.set(peer.key, peer);
  }

  /** One scheduled action, at the least recently used peer's deadline. */
  private arm(): void {
    if (this.timer !== undefined || this.closed) return;
    const oldest = this.peers.values().next().value;
    if (oldest === undefined) return;
    const scheduler = this.ctx.scheduler;
    const delay = Math.max(0, oldest.lastActive + this.idleTimeoutMs - scheduler.now());
    this.timer = scheduler.schedule(() => {
      this.timer = undefined;
      for (const peer of this.peers.values()) {
        if (peer.lastActive + this.idleTimeoutMs > scheduler.now()) break;
        this.peers.delete(peer.key);
        this.bySource.delete(`${peer.source}:${peer.sourcePort}`);
        this.ctx.counters.add('hostfwd.udp.peer-expired');
      }
      this.arm();
    }, delay);
  }
}
