/**
 * The DHCP server (RFC 2131) on UDP port 67 of the gateway, as a UDP
 * service in front of the NAT: it takes datagrams to port 67 sent to the
 * limited broadcast address or to the gateway, and answers from the
 * gateway's port 67.
 *
 * The lease logic is protocols/dhcp.ts's DhcpServer, one per subscription,
 * its clock ctx.scheduler: leases network+15 .. network+30 (slirp4netns's
 * range), options subnet mask, router (the gateway), DNS server (network+3,
 * left out under --disable-dns), lease time (24 h) and interface MTU (the
 * tap's). Replies go where RFC 2131 4.1 says: broadcast (IPv4 and
 * Ethernet) while the client has no address or asked for it, else unicast
 * to the client's hardware address, which need not answer ARP yet.
 *
 * Counted: `dhcp.replied`, and every message not answered under the
 * server's reason (`dhcp.released`, `dhcp.not-dhcp`, ...) or the codec's
 * ParseError code (`dhcp.bad-cookie`, ...).
 */
import { defer, type OperatorFunction } from 'rxjs';
import { ipv4ToString } from '../protocols/address.js';
import { DHCP_SERVER_PORT, DhcpServer, parseDhcp } from '../protocols/dhcp.js';
import { ethSource } from '../protocols/ethernet.js';
import type { StackContext } from './context.js';
import { handler } from './handler.js';
import { ipIdSource, udpFrame, type UdpPacket, type UdpService } from './udp.js';

const LIMITED_BROADCAST = 0xffffffff;
const LEASE_TIME_SEC = 86_400;

export function dhcpService(ctx: StackContext): UdpService {
  const { gateway } = ctx.config;
  return {
    accepts: ({ ip, udp }) =>
      udp.dstPort === DHCP_SERVER_PORT && (ip.dst === LIMITED_BROADCAST || ip.dst === gateway),
    operator: dhcpServer(ctx),
  };
}

export function dhcpServer(ctx: StackContext): OperatorFunction<UdpPacket, Buffer> {
  const c = ctx.config;
  return (source) =>
    defer(() => {
      const server = new DhcpServer({
        serverIp: c.gateway,
        network: c.network,
        netmask: c.netmask,
        gateway: c.gateway,
        dns: c.dnsEnabled ? [c.dns] : [],
        rangeBegin: c.dhcpBegin,
        rangeEnd: c.dhcpEnd,
        leaseTimeSec: LEASE_TIME_SEC,
        mtu: c.mtu,
      });
      const nextId = ipIdSource();
      return source.pipe(
        handler<UdpPacket, Buffer>(ctx, 'dhcp', ({ ip, udp }, emit) => {
          const message = parseDhcp(udp.buf, udp.payloadOffset, udp.payloadLength);
          const result = server.handle(message, ctx.scheduler.now());
          if (result.kind === 'none') {
            ctx.counters.add(result.reason);
            return;
          }
          const { to } = result;
          const frame = udpFrame(
            {
              dstMac: to.mac ?? ethSource(ip.buf),
              srcMac: ctx.gatewayMac,
              src: c.gateway,
              srcPort: DHCP_SERVER_PORT,
              dst: to.ip,
              dstPort: to.port,
              identification: nextId(),
            },
            result.payload,
          );
          ctx.counters.add('dhcp.replied');
          if (ctx.log.enabled('debug')) ctx.log.debug(`dhcp: reply to ${ipv4ToString(to.ip)}`);
          emit(frame);
        }),
      );
    });
}
