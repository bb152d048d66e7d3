/**
 * rxslirp as a library: attach the stack to a namespace's tap, and compose
 * your own operators into the frame path.
 *
 * ```ts
 * import { attach, networkConfig, pcap } from 'rxslirp';
 * import { filter } from 'rxjs';
 *
 * const slirp = attach({
 *   netnsPath: `/proc/${pid}/ns/net`,
 *   usernsPath: `/proc/${pid}/ns/user`,
 *   network: networkConfig('10.0.2.0/24', 1500),
 *   configure: true,
 *   ingress: [pcap('guest-sent.pcap'), filter((frame) => frame.length < 9000)],
 *   egress: [pcap('guest-received.pcap')],
 * });
 * // ...
 * slirp.close();
 * ```
 */
export { attach, runStack, type AttachOptions, type FrameOperator, type Slirp } from './slirp.js';
export {
  networkConfig,
  parseCidr,
  parseMtu,
  specialMac,
  ConfigError,
  type NetworkConfig,
} from './config.js';
export { stackContext, type StackContext } from './operators/context.js';
export { slirpStack, type StackOptions } from './operators/stack.js';
export { ethernetDemux } from './operators/ethernet.js';
export { ipv4Demux, ipv4Input } from './operators/ipv4.js';
export { arpResponder } from './operators/arp.js';
export {
  ipv4Fragmenter,
  ipv4Reassembly,
  type ReassemblyOperatorOptions,
} from './operators/fragments.js';
export {
  udpInput,
  udpNat,
  udpFrame,
  type UdpNatOptions,
  type UdpPacket,
  type UdpService,
} from './operators/udp.js';
export { dhcpService, dhcpServer } from './operators/dhcp.js';
export {
  DnsForwarder,
  dnsService,
  dnsResponder,
  type DnsForwarderOptions,
} from './operators/dns.js';
export {
  udpConnection,
  type UdpSocketEvent,
  type UdpSocketFactory,
  type UdpTarget,
} from './streams/udp-socket.js';
export { icmpEchoResponder } from './operators/icmp-echo.js';
export { demux, type Routes } from './operators/demux.js';
export { handler } from './operators/handler.js';
export { pcap, pcapWriter, type PcapOptions, type PcapWriter } from './operators/pcap.js';
export {
  faults,
  seededRandom,
  type FaultsOperator,
  type FaultsOptions,
  type FaultStats,
} from './operators/faults.js';
export { TapDevice, type TapStats } from './streams/tap.js';
export { Counters, logger, setLogLevel, setLogSink, type Level, type Logger } from './util/log.js';
export { ParseError } from './protocols/errors.js';
