/**
 * Building frames to the guest: one allocation per frame, headers written
 * in place, the payload region left for the caller to fill.
 */
import type { Mac } from '../protocols/address.js';
import { ETH_HEADER_LENGTH, EtherType, writeEthernet } from '../protocols/ethernet.js';
import { IPV4_MIN_HEADER, writeIpv4Header, type Ipv4Repr } from '../protocols/ipv4.js';

export const IPV4_PAYLOAD_OFFSET = ETH_HEADER_LENGTH + IPV4_MIN_HEADER;

/**
 * A frame with Ethernet and IPv4 headers written; the IPv4 payload starts
 * at IPV4_PAYLOAD_OFFSET and is `repr.payloadLength` bytes long.
 */
export function ipv4Frame(dstMac: Uint8Array, srcMac: Mac, repr: Ipv4Repr): Buffer {
  const frame = Buffer.allocUnsafe(IPV4_PAYLOAD_OFFSET + repr.payloadLength);
  writeEthernet(frame, 0, dstMac, srcMac, EtherType.IPv4);
  writeIpv4Header(frame, ETH_HEADER_LENGTH, repr);
  return frame;
}
