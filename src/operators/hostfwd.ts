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
 * guest_addr:guest_port from the gateway address and a port of its own,
 * and from then on treats it as any other flow (flow control both ways,
 * half-close, RST when either side aborts); the host socket is read only
 * once the guest accepted. A guest that refuses, or never answers, gets
 * the host socket reset.
 *
 * To send that first SYN the stack needs the guest's MAC, which it learns
 * from the guest's ARP packets (neighbors.ts). When it does not know it
 * yet it asks by ARP, from the gateway, up to `ARP_TRIES` times a second
 * apart; a guest that never answers gets the host connection reset
 * (`hostfwd.arp-timeout`).
 *
 * Ids start at 1 and are never reused. Removing a forward closes its
 * listener; connections it accepted carry on to their end. Forwards are
 * IPv4 only, as in slirp4netns.
 *
 * **Not yet**: UDP forwards. `add_hostfwd` with proto "udp" fails with
 * slirp4netns's `slirp_add_hostfwd failed` and is counted as
 * `hostfwd.udp-unsupported`.
 */
import { Subject, type Subscription } from 'rxjs';
import { ARP_LENGTH, ArpOperation, writeArp } from '../protocols/arp.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../protocols/ethernet.js';
import { BROADCAST_MAC, ipv4ToString, type Mac } from '../protocols/address.js';
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
} from '../streams/host-tcp.js';
import type { StackContext } from './context.js';
import type { TcpNatHandle } from './tcp.js';

/** ARP requests for a guest address before a forwarded connection is given up. */
const ARP_TRIES = 3;
const ARP_INTERVAL_MS = 1000;

export type TcpListen = (
  host: string,
  port: number,
  onAccept: (accept: HostTcpAccept) => void,
) => Promise<HostTcpListener>;

interface Forward {
  readonly spec: HostfwdSpec;
  readonly listener: HostTcpListener;
}

const IGNORE: HostTcpEvents = {
  connected: () => {},
  data: () => {},
  end: () => {},
  error: () => {},
  closed: () => {},
};

export class HostForwarder {
  /** Frames the forwarder itself sends the guest (ARP requests). */
  readonly frames$ = new Subject<Buffer>();
  private readonly forwards = new Map<number, Forward>();
  private nextId = 1;
  private tcp: TcpNatHandle | undefined;
  private closed = false;

  constructor(
    private readonly ctx: StackContext,
    private readonly listen: TcpListen = listenTcp,
  ) {}

  /** The TCP NAT that carries forwarded connections (the stack calls this). */
  attachTcp(handle: TcpNatHandle): void {
    this.tcp = handle;
  }

  /** Adds a forward; resolves to its id, or rejects when the host listen fails. */
  async add(spec: HostfwdSpec): Promise<number> {
    const counters = this.ctx.counters;
    if (spec.proto === 'udp') {
      counters.add('hostfwd.udp-unsupported');
      throw new Error('UDP forwarding is not supported yet');
    }
    const listener = await this.listen(spec.hostAddr, spec.hostPort, (accept) =>
      this.accepted(spec, accept),
    );
    if (this.closed) {
      listener.close();
      throw new Error('the stack is closing');
    }
    const id = this.nextId++;
    this.forwards.set(id, { spec, listener });
    counters.add('hostfwd.added');
    this.ctx.log.info(`hostfwd: ${id} added: ${describe(spec)}`);
    return id;
  }

  remove(id: number): boolean {
    const forward = this.forwards.get(id);
    if (forward === undefined) return false;
    this.forwards.delete(id);
    forward.listener.close();
    this.ctx.log.info(`hostfwd: ${id} removed`);
    return true;
  }

  list(): HostfwdEntry[] {
    return [...this.forwards].map(([id, f]) => hostfwdEntry(id, f.spec));
  }

  /** Closes every listener (the stack is stopping). */
  closeAll(): void {
    this.closed = true;
    for (const f of this.forwards.values()) f.listener.close();
    this.forwards.clear();
    this.frames$.complete();
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

  // --- one accepted connection ------------------------------------------

  private accepted(spec: HostfwdSpec, accept: HostTcpAccept): void {
    const mac = this.ctx.neighbors.get(spec.guestAddr);
    if (mac !== undefined) {
      this.connect(spec, mac, accept);
      return;
    }
    this.resolve(spec, accept);
  }

  private connect(spec: HostfwdSpec, guestMac: Mac, accept: HostTcpAccept): void {
    const target = { guestAddr: spec.guestAddr, guestMac, guestPort: spec.guestPort };
    if (this.closed || this.tcp === undefined || !this.tcp.forward(target, accept)) {
      accept(IGNORE).reset();
    }
  }

  /** Asks the guest's MAC by ARP, then connects; gives up after ARP_TRIES. */
  private resolve(spec: HostfwdSpec, accept: HostTcpAccept): void {
    const ctx = this.ctx;
    let tries = 0;
    let timer: Subscription | undefined;
    const cancel = ctx.neighbors.wait(spec.guestAddr, (mac) => {
      timer?.unsubscribe();
      this.connect(spec, mac, accept);
    });
    const ask = (): void => {
      if (this.closed || tries === ARP_TRIES) {
        cancel();
        ctx.counters.add('hostfwd.arp-timeout');
        accept(IGNORE).reset();
        return;
      }
      tries++;
      this.frames$.next(this.arpRequest(spec));
      timer = ctx.scheduler.schedule(ask, ARP_INTERVAL_MS);
    };
    ask();
  }

  private arpRequest(spec: HostfwdSpec): Buffer {
    const ctx = this.ctx;
    const frame = Buffer.alloc(ETH_HEADER_LENGTH + ARP_LENGTH);
    writeEthernet(frame, 0, BROADCAST_MAC, ctx.gatewayMac, EtherType.ARP);
    writeArp(frame, ETH_HEADER_LENGTH, {
      operation: ArpOperation.Request,
      senderMac: ctx.gatewayMac,
      senderIp: ctx.config.gateway,
      targetMac: new Uint8Array(6),
      targetIp: spec.guestAddr,
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
