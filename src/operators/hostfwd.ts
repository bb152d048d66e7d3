/**
 * Port forwarding from the host to the guest (`add_hostfwd` on the control
 * socket): the table of forwards, their host listeners, and the requests
 * of the control socket executed against them.
 *
 * ## Theory of operation
 *
 * Each TCP forward is a listening host socket on host_addr:host_port. A
 * connection it accepts is paused and handed to the TCP NAT
 * (tcp.ts, `TcpNatHandle.forward`), which opens a connection to
 * guest_addr:guest_port from the client's own address and port, or from
 * the gateway where the guest could not answer the client
 * (forward-source.ts), and from then on treats it as any other flow (flow
 * control both ways, half-close, RST when either side aborts); the host
 * socket is read only once the guest accepted. A guest that refuses, or never answers, gets
 * the host socket reset.
 *
 * To send that first SYN the stack needs the guest's MAC, which it learns
 * from the guest's ARP packets (neighbors.ts). When it does not know it
 * yet it asks by ARP, from the gateway, up to `ARP_TRIES` times a second
 * apart; a guest that never answers gets the host connection reset
 * (`hostfwd.arp-timeout`).
 *
 * Each UDP forward is a bound host socket and its host peers, each shown
 * to the guest as itself or as a gateway port (udp-hostfwd.ts). Datagrams
 * the guest sends back to such a source are taken here (`udpService`, tried before the UDP NAT,
 * which would send them to the host's 127.0.0.1); its frames to the guest
 * share `frames$`, which the stack fragments to the MTU. Gateway ports of
 * TCP and UDP forwards toward the same guest port never clash.
 *
 * Ids start at 1 and are never reused. Removing a TCP forward closes its
 * listener; connections it accepted carry on to their end. Removing a UDP
 * forward closes its socket and forgets its peers. Forwards are IPv4 only,
 * as in slirp4netns.
 */
import { Subject, type Subscription } from 'rxjs';
import { ARP_LENGTH, ArpOperation, writeArp } from '../protocols/arp.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../protocols/ethernet.js';
import { BROADCAST_MAC, ipv4ToString, type Ipv4, type Mac } from '../protocols/address.js';
import {
  ApiErrorText,
  ApiRequestError,
  apiError,
  apiListReply,
  apiReturn,
  hostfwdEntry,
  parseApiRequest,
  type HostfwdEntry,
  type HostfwdSpec,
} from '../protocols/api.js';
import {
  listenTcp,
  type HostTcpAccept,
  type HostTcpEvents,
  type HostTcpListener,
  type HostTcpPeer,
} from '../streams/host-tcp.js';
import { bindUdp, type UdpBind } from '../streams/udp-socket.js';
import type { StackContext } from './context.js';
import { forwardClient } from './forward-source.js';
import { handler } from './handler.js';
import type { TcpNatHandle } from './tcp.js';
import { UdpForward } from './udp-hostfwd.js';
import type { UdpPacket, UdpService } from './udp.js';

/** ARP requests for a guest address before a forwarded connection is given up. */
const ARP_TRIES = 3;
const ARP_INTERVAL_MS = 1000;

export type TcpListen = (
  host: string,
  port: number,
  onAccept: (accept: HostTcpAccept, peer: HostTcpPeer) => void,
) => Promise<HostTcpListener>;

interface Forward {
  readonly spec: HostfwdSpec;
  /** The TCP listener or the UDP forward. */
  readonly handle: HostTcpListener | UdpForward;
}

const IGNORE: HostTcpEvents = {
  connected: () => {},
  data: () => {},
  end: () => {},
  error: () => {},
  closed: () => {},
};

export class HostForwarder {
  /** Frames the forwarder itself sends the guest (ARP requests, UDP forwards' datagrams). */
  readonly frames$ = new Subject<Buffer>();
  private readonly forwards = new Map<number, Forward>();
  private readonly udpForwards = new Set<UdpForward>();
  private nextId = 1;
  private tcp: TcpNatHandle | undefined;
  private closed = false;

  constructor(
    private readonly ctx: StackContext,
    private readonly listen: TcpListen = listenTcp,
    private readonly bind: UdpBind = bindUdp,
  ) {}

  /** The TCP NAT that carries forwarded connections (the stack calls this). */
  attachTcp(handle: TcpNatHandle): void {
    this.tcp = handle;
  }

  /** Adds a forward; resolves to its id, or rejects when the host listen fails. */
  async add(spec: HostfwdSpec): Promise<number> {
    const handle = spec.proto === 'udp' ? await this.addUdp(spec) : await this.addTcp(spec);
    if (this.closed) {
      this.closeHandle(handle);
      throw new Error('the stack is closing');
    }
    const id = this.nextId++;
    this.forwards.set(id, { spec, handle });
    this.ctx.counters.add('hostfwd.added');
    this.ctx.log.info(`hostfwd: ${id} added: ${describe(spec)}`);
    return id;
  }

  remove(id: number): boolean {
    const forward = this.forwards.get(id);
    if (forward === undefined) return false;
    this.forwards.delete(id);
    this.closeHandle(forward.handle);
    this.ctx.log.info(`hostfwd: ${id} removed`);
    return true;
  }

  list(): HostfwdEntry[] {
    return [...this.forwards].map(([id, f]) => hostfwdEntry(id, f.spec));
  }

  /** Closes every listener (the stack is stopping). */
  closeAll(): void {
    this.closed = true;
    for (const f of this.forwards.values()) this.closeHandle(f.handle);
    this.forwards.clear();
    this.frames$.complete();
  }

  /** The UDP service (stack.ts puts it before the NAT): guests' replies to UDP forwards. */
  udpService(): UdpService {
    return {
      accepts: (p) => this.udpOwner(p) !== undefined,
      operator: handler<UdpPacket, Buffer>(this.ctx, 'hostfwd', (p) =>
        this.udpOwner(p)?.fromGuest(p),
      ),
    };
  }

  /** Answers one control-socket request (its text) with the reply's text. */
  async execute(text: string): Promise<string> {
    try {
      const request = parseApiRequest(text, this.ctx.config);
      switch (request.execute) {
        case 'add_hostfwd':
          return apiReturn({ id: await this.addOrFail(request.spec) });
        case 'remove_hostfwd':
          // An id that is not (or no longer) there: slirp4netns 1.2 answers
          // this, not "slirp_remove_hostfwd failed" (measured side by side).
          if (!this.remove(request.id)) throw new ApiRequestError(ApiErrorText.removeId);
          return apiReturn({});
        case 'list_hostfwd':
          return apiListReply(this.list());
      }
    } catch (e) {
      if (e instanceof ApiRequestError) return apiError(e.desc);
      throw e;
    }
  }

  private async addOrFail(spec: HostfwdSpec): Promise<number> {
    try {
      return await this.add(spec);
    } catch (e) {
      this.ctx.log.warn(`hostfwd: cannot add ${describe(spec)}: ${(e as Error).message}`);
      throw new ApiRequestError(ApiErrorText.addFailed);
    }
  }

  private addTcp(spec: HostfwdSpec): Promise<HostTcpListener> {
    return this.listen(spec.hostAddr, spec.hostPort, (accept, peer) =>
      this.accepted(spec, accept, peer),
    );
  }

  private async addUdp(spec: HostfwdSpec): Promise<UdpForward> {
    const forward: UdpForward = new UdpForward(this.ctx, spec, {
      emit: (frame) => this.frames$.next(frame),
      portTaken: (port): boolean => this.portTaken(spec, port, forward),
      resolveMac: (address, then, giveUp) => this.resolveMac(address, then, giveUp),
    });
    const socket = await this.bind(spec.hostAddr, spec.hostPort, {
      message: (data, from) => forward.fromHost(data, from),
      error: (code) => this.ctx.counters.add(`hostfwd.udp.host-error.${code}`),
    });
    forward.attach(socket);
    this.udpForwards.add(forward);
    return forward;
  }

  private closeHandle(handle: HostTcpListener | UdpForward): void {
    if (handle instanceof UdpForward) this.udpForwards.delete(handle);
    handle.close();
  }

  private udpOwner(p: UdpPacket): UdpForward | undefined {
    for (const forward of this.udpForwards) if (forward.owns(p)) return forward;
    return undefined;
  }

  /**
   * Whether a gateway port is in use toward spec's guest port, by a TCP
   * forward's connection or a UDP forward's peer (other than `except`'s).
   */
  private portTaken(spec: HostfwdSpec, port: number, except?: UdpForward): boolean {
    const { guestAddr, guestPort } = spec;
    if (this.tcp?.usesPort(guestAddr, guestPort, port) === true) return true;
    for (const f of this.udpForwards) {
      const s = f.spec;
      if (f === except || s.guestAddr !== guestAddr || s.guestPort !== guestPort) continue;
      if (f.usesPort(port)) return true;
    }
    return false;
  }

  // --- one accepted connection ------------------------------------------

  private accepted(spec: HostfwdSpec, accept: HostTcpAccept, peer: HostTcpPeer): void {
    this.resolveMac(
      spec.guestAddr,
      (mac) => this.connect(spec, mac, accept, peer),
      () => accept(IGNORE).reset(),
    );
  }

  private connect(
    spec: HostfwdSpec,
    guestMac: Mac,
    accept: HostTcpAccept,
    peer: HostTcpPeer,
  ): void {
    const target = {
      guestAddr: spec.guestAddr,
      guestMac,
      guestPort: spec.guestPort,
      client: forwardClient(peer.address, peer.port),
      taken: (port: number) => this.portTaken(spec, port),
    };
    if (this.closed || this.tcp === undefined || !this.tcp.forward(target, accept)) {
      accept(IGNORE).reset();
    }
  }

  /**
   * The guest's MAC: at once when known, else asked by ARP, then `then`;
   * `giveUp` after ARP_TRIES unanswered requests (or when closing).
   */
  private resolveMac(address: Ipv4, then: (mac: Mac) => void, giveUp: () => void): void {
    const ctx = this.ctx;
    const known = ctx.neighbors.get(address);
    if (known !== undefined) return then(known);
    let tries = 0;
    let timer: Subscription | undefined;
    const cancel = ctx.neighbors.wait(address, (mac) => {
      timer?.unsubscribe();
      then(mac);
    });
    const ask = (): void => {
      if (this.closed || tries === ARP_TRIES) {
        cancel();
        ctx.counters.add('hostfwd.arp-timeout');
        giveUp();
        return;
      }
      tries++;
      this.frames$.next(this.arpRequest(address));
      timer = ctx.scheduler.schedule(ask, ARP_INTERVAL_MS);
    };
    ask();
  }

  private arpRequest(address: Ipv4): Buffer {
    const ctx = this.ctx;
    const frame = Buffer.alloc(ETH_HEADER_LENGTH + ARP_LENGTH);
    writeEthernet(frame, 0, BROADCAST_MAC, ctx.gatewayMac, EtherType.ARP);
    writeArp(frame, ETH_HEADER_LENGTH, {
      operation: ArpOperation.Request,
      senderMac: ctx.gatewayMac,
      senderIp: ctx.config.gateway,
      targetMac: new Uint8Array(6),
      targetIp: address,
    });
    ctx.counters.add('hostfwd.arp-request');
    return frame;
  }
}

function describe(spec: HostfwdSpec): string {
  return (
    `${spec.proto} ${spec.hostAddr}:${spec.hostPort} -> ` +
    `${ipv4ToString(spec.guestAddr)}:${spec.guestPort}`
  );
}
