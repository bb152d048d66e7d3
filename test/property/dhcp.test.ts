/**
 * The DHCP server under arbitrary conversations of a few clients sharing a
 * pool too small for them all, with time passing: it never throws, every
 * address it offers or acknowledges lies in the range, and it never
 * acknowledges an address that another client still holds a live lease on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numRuns } from './runs.js';
import {
  DhcpMessageType as T,
  DhcpOption,
  DhcpServer,
  dhcpValue,
  encodeDhcp,
  parseDhcp,
  type DhcpOptionEntry,
} from '../../src/protocols/dhcp.js';

const BASE = 0x0a000200;
const SERVER = BASE + 2;
const BEGIN = BASE + 15;
const END = BASE + 17;
const LEASE_MS = 3_600_000;

const step = fc.record({
  client: fc.integer({ min: 1, max: 4 }),
  type: fc.constantFrom(T.Discover, T.Request, T.Request, T.Release, T.Decline, T.Inform),
  ip: fc.constantFrom(0, BEGIN, BEGIN + 1, END, END + 1, BASE + 100, 0xc0a80001),
  useOwn: fc.boolean(),
  server: fc.constantFrom(undefined, SERVER, SERVER + 1),
  ciaddr: fc.boolean(),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * LEASE_MS })),
});

function message(client: number, type: number, ip: number, server?: number, ciaddr = false) {
  const chaddr = new Uint8Array(16);
  chaddr.set([2, 0, 0, 0, 0, client]);
  const options: DhcpOptionEntry[] = [[DhcpOption.MessageType, dhcpValue.u8(type)]];
  if (ip !== 0 && !ciaddr) options.push([DhcpOption.RequestedIp, dhcpValue.u32(ip)]);
  if (server !== undefined) options.push([DhcpOption.ServerId, dhcpValue.u32(server)]);
  return parseDhcp(
    encodeDhcp({
      ...{ op: 1, htype: 1, hlen: 6, hops: 0, xid: client, secs: 0, flags: 0 },
      ...{ ciaddr: ciaddr ? ip : 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr },
      ...{ sname: new Uint8Array(64), file: new Uint8Array(128), options },
    }),
  );
}

test('the DHCP server never double-allocates, under any conversation', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80, size: 'max' }), (steps) => {
      const server = new DhcpServer({
        serverIp: SERVER,
        network: BASE,
        netmask: 0xffffff00,
        gateway: SERVER,
        dns: [BASE + 3],
        rangeBegin: BEGIN,
        rangeEnd: END,
        leaseTimeSec: LEASE_MS / 1000,
        offerHoldMs: 30_000,
      });
      const held = new Map<number, { ip: number; until: number }>();
      const offered = new Map<number, number>();
      let now = 0;
      for (const s of steps) {
        now += s.advance;
        const own = held.get(s.client)?.ip ?? offered.get(s.client) ?? 0;
        const ip = s.useOwn ? own : s.ip;
        const r = server.handle(message(s.client, s.type, ip, s.server, s.ciaddr), now);
        if (r.kind === 'none') {
          if (r.reason === 'dhcp.released' || r.reason === 'dhcp.declined') held.delete(s.client);
          continue;
        }
        const m = parseDhcp(r.payload);
        assert.equal(m.xid, s.client);
        if (m.messageType === T.Nak || s.type === T.Inform) {
          assert.equal(m.yiaddr, 0);
          continue;
        }
        assert.ok(m.yiaddr >= BEGIN && m.yiaddr <= END, `yiaddr ${m.yiaddr} outside the range`);
        if (m.messageType === T.Offer) {
          offered.set(s.client, m.yiaddr);
          continue;
        }
        assert.equal(m.messageType, T.Ack);
        for (const [other, lease] of held) {
          if (other !== s.client && lease.ip === m.yiaddr) {
            assert.ok(lease.until <= now, `client ${other} still holds ${m.yiaddr}`);
          }
        }
        held.set(s.client, { ip: m.yiaddr, until: now + LEASE_MS });
      }
      assert.ok(server.leases().length <= END - BEGIN + 1);
    }),
    { numRuns: numRuns(300) },
  );
});
