/**
 * The public library entry (what `import ... from 'rxslirp'` gives): the
 * stack composed with user operators on both sides, driven without a tap
 * through `runStack`. A user's ingress operators see every frame from the
 * guest before the stack, its egress operators every frame to the guest
 * after it, and either can drop frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject, filter, tap } from 'rxjs';
import { networkConfig, runStack, stackContext, type FrameOperator } from '../src/index.js';
import { ArpOperation, ArpPacket } from '../src/protocols/arp.js';
import { ETH_HEADER_LENGTH, EtherType, etherType } from '../src/protocols/ethernet.js';

const GUEST_MAC = '020000000001';
const GUEST_IP = '0a000264'; // 10.0.2.100
const GATEWAY = 0x0a000202;
const DNS = 0x0a000203;

/** A broadcast ARP request from the guest asking who has `target`. */
function arpRequest(target: number): Buffer {
  const tpa = target.toString(16).padStart(8, '0');
  return Buffer.from(
    `ffffffffffff${GUEST_MAC}0806` + `0001080006040001${GUEST_MAC}${GUEST_IP}000000000000${tpa}`,
    'hex',
  );
}

/** The ARP packet in `frame`, or undefined if it holds none. */
function arpOf(frame: Buffer): ArpPacket | undefined {
  if (etherType(frame) !== EtherType.ARP) return undefined;
  return ArpPacket.parse(frame, ETH_HEADER_LENGTH);
}

function isRequestFor(target: number): (frame: Buffer) => boolean {
  return (frame) =>
    arpOf(frame)?.operation === ArpOperation.Request && arpOf(frame)?.targetIp === target;
}

function isReplyFrom(sender: number): (frame: Buffer) => boolean {
  return (frame) =>
    arpOf(frame)?.operation === ArpOperation.Reply && arpOf(frame)?.senderIp === sender;
}

/** Runs the stack with `ingress` and `egress`, feeds `frames`, returns what reached the guest. */
function drive(frames: Buffer[], ingress: FrameOperator[], egress: FrameOperator[]): Buffer[] {
  const ctx = stackContext(networkConfig());
  const input = new Subject<Buffer>();
  const toGuest: Buffer[] = [];
  const sub = runStack(input, (f) => toGuest.push(f), ctx, ingress, egress);
  for (const f of frames) input.next(f);
  input.complete();
  sub.unsubscribe();
  return toGuest;
}

test('user operators see the ARP request on ingress and the reply on egress', () => {
  const seenIn: Buffer[] = [];
  const seenOut: Buffer[] = [];
  const toGuest = drive(
    [arpRequest(GATEWAY)],
    [tap((f) => seenIn.push(f))],
    [tap((f) => seenOut.push(f))],
  );

  assert.equal(seenIn.length, 1);
  assert.ok(isRequestFor(GATEWAY)(seenIn[0]!), 'ingress saw the request');
  assert.equal(seenOut.length, 1);
  assert.ok(isReplyFrom(GATEWAY)(seenOut[0]!), 'egress saw the reply');
  assert.deepEqual(toGuest, seenOut, 'what egress passed on reached the guest');
});

test('an ingress filter keeps a frame from the stack; an egress filter keeps a reply from the guest', () => {
  const dropDnsRequests = filter((f: Buffer) => !isRequestFor(DNS)(f));
  const dropGatewayReplies = filter((f: Buffer) => !isReplyFrom(GATEWAY)(f));
  const seenOut: Buffer[] = [];

  const toGuest = drive(
    [arpRequest(GATEWAY), arpRequest(DNS), arpRequest(DNS), arpRequest(GATEWAY)],
    [dropDnsRequests],
    [tap((f) => seenOut.push(f)), dropGatewayReplies],
  );

  assert.equal(seenOut.length, 2, 'the stack answered only the two requests it was given');
  assert.ok(seenOut.every(isReplyFrom(GATEWAY)), 'both answers are for the gateway');
  assert.deepEqual(toGuest, [], 'the egress filter dropped both');
});

test('without user operators the stack answers both ARP requests', () => {
  const toGuest = drive([arpRequest(GATEWAY), arpRequest(DNS)], [], []);
  assert.equal(toGuest.length, 2);
  assert.ok(isReplyFrom(GATEWAY)(toGuest[0]!));
  assert.ok(isReplyFrom(DNS)(toGuest[1]!));
});
