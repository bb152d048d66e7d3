/**
 * IPv6 settings: `-6` and `--cidr6` give the addresses slirp4netns uses
 * (prefix::2, prefix::3) and the router's EUI-64 link-local address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settingsFrom } from '../../src/cli/options.js';
import { eui64, networkConfig } from '../../src/config.js';
import { ipv6ToString } from '../../src/protocols/address.js';

test('-6 gives fd00::/64 with gateway fd00::2 and DNS fd00::3', () => {
  const s = settingsFrom({ enableIpv6: true }, ['123']);
  const v6 = s.network.ipv6;
  assert.ok(v6);
  assert.equal(ipv6ToString(v6.prefix), 'fd00::');
  assert.equal(v6.prefixLength, 64);
  assert.equal(ipv6ToString(v6.gateway), 'fd00::2');
  assert.equal(ipv6ToString(v6.dns), 'fd00::3');
  // The gateway's MAC is 52:55:0a:00:02:02; EUI-64 flips the U/L bit.
  assert.equal(ipv6ToString(v6.linkLocal), 'fe80::5055:aff:fe00:202');
});

test('without -6 there is no IPv6 configuration', () => {
  assert.equal(settingsFrom({}, ['123']).network.ipv6, undefined);
});

test('--cidr6 moves every IPv6 address into the new prefix', () => {
  const v6 = networkConfig(undefined, undefined, { ipv6: '2001:db8:1:2::/64' }).ipv6!;
  assert.equal(ipv6ToString(v6.gateway), '2001:db8:1:2::2');
  assert.equal(ipv6ToString(v6.dns), '2001:db8:1:2::3');
});

test('modified EUI-64 of a MAC', () => {
  assert.deepEqual(
    Array.from(eui64(Uint8Array.of(0x02, 0, 0, 0, 0, 1))),
    [0, 0, 0, 0xff, 0xfe, 0, 0, 1],
  );
});
