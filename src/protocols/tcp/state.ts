/**
 * TCP connection states (RFC 9293 section 3.3.2), plus the one state of our
 * own: CONNECT_PENDING, a passive open whose SYN has arrived while the glue
 * is still connecting the host socket it stands for. It sits between LISTEN
 * and SYN-RECEIVED: nothing has been sent to the peer yet, and the SYN-ACK
 * (or a RST, or nothing) follows the host socket's fate.
 *
 * LISTEN does not exist here: the glue is the listener, and makes one
 * endpoint per SYN.
 */
export const TcpState = {
  Closed: 0,
  ConnectPending: 1,
  SynSent: 2,
  SynReceived: 3,
  Established: 4,
  FinWait1: 5,
  FinWait2: 6,
  CloseWait: 7,
  Closing: 8,
  LastAck: 9,
  TimeWait: 10,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

const NAMES = [
  'CLOSED',
  'CONNECT-PENDING',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
] as const;

/** The RFC's name for a state, for logs. */
export function tcpStateName(s: TcpState): string {
  return NAMES[s];
}

/** States in which both sequence spaces are known (RFC 9293 3.10.7.4). */
export function isSynchronized(s: TcpState): boolean {
  return s >= TcpState.SynReceived;
}

/** States in which the peer may still send us data. */
export function canReceive(s: TcpState): boolean {
  return s === TcpState.Established || s === TcpState.FinWait1 || s === TcpState.FinWait2;
}

/** States in which we may still queue data for the peer. */
export function canSend(s: TcpState): boolean {
  return (
    s === TcpState.ConnectPending ||
    s === TcpState.SynSent ||
    s === TcpState.SynReceived ||
    s === TcpState.Established ||
    s === TcpState.CloseWait
  );
}
