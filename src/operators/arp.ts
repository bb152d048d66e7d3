/**
 * The ARP responder: answers requests for the gateway and (unless
 * --disable-dns) the DNS address with the MAC the stack uses for them.
 * Requests for any other address are the guest's own business (duplicate
 * address detection, neighbours that do not exist) and are counted as
 * `arp.not-for-us`; replies to us are counted as `arp.reply-ignored`.
 * Every ARP packet from a host of the guest network teaches the stack
 * that host's MAC (ctx.neighbors), for connections it opens to the guest.
 */
import type { OperatorFunction } from 'rxjs';
import { ARP_LENGTH, ArpOperation, ArpPacket, writeArpReply } from '../protocols/arp.js';
import { ETH_HEADER_LENGTH, EtherType, ethSource, writeEthernet } from '../protocols/ethernet.js';
import { isLocalAddress, localMac, type StackContext } from './context.js';
import { handler } from './handler.js';

export function arpResponder(ctx: StackContext): OperatorFunction<Buffer, Buffer> {
  return handler<Buffer, Buffer>(ctx, 'arp', (frame, emit) => {
    const request = ArpPacket.parse(frame, ETH_HEADER_LENGTH);
    learn(ctx, request);
    if (request.operation !== ArpOperation.Request) {
      ctx.counters.add('arp.reply-ignored');
      return;
    }
    if (!isLocalAddress(ctx, request.targetIp)) {
      ctx.counters.add('arp.not-for-us');
      return;
    }
    const mac = localMac(ctx, request.targetIp);
    const reply = Buffer.allocUnsafe(ETH_HEADER_LENGTH + ARP_LENGTH);
    writeEthernet(reply, 0, ethSource(frame), mac, EtherType.ARP);
    writeArpReply(reply, ETH_HEADER_LENGTH, request, mac);
    ctx.counters.add('arp.replied');
    emit(reply);
  });
}

function learn(ctx: StackContext, arp: ArpPacket): void {
  const { network, netmask } = ctx.config;
  const ip = arp.senderIp;
  if ((ip & netmask) >>> 0 !== network || ip === network || isLocalAddress(ctx, ip)) return;
  ctx.neighbors.learn(ip, arp.senderMac);
}
