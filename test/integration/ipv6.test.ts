/**
 * IPv6 (`-6`) against the real kernel, each test in its own private
 * namespace: the guest configures an address by SLAAC from our router
 * advertisement, pings the gateway, and reaches servers on the sandbox's
 * ::1 through [prefix::2]; `--cidr6` moves everything to another prefix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

/** Waits (at most 10 s) until tap0 has a global address that is not tentative. */
const WAIT_SLAAC = `
waitslaac() {
  for _ in $(seq 100); do
    ip -6 addr show dev tap0 scope global | grep -v tentative | grep -q inet6 && return 0
    sleep 0.1
  done
  ip -6 addr show dev tap0; return 1
}
`;

test('-6: SLAAC gives the guest an fd00::/64 address, the default route via our router, and ping to fd00::2', async () => {
  const r = await inSandbox(`${WAIT_SLAAC}
"$RXSLIRP" run -6 -- bash -c '${'$'}(declare -f waitslaac); waitslaac
  ip -6 addr show dev tap0 scope global
  ip -6 route show default
  ping -6 -c 3 -W 2 fd00::2
  ping -6 -c 1 -W 2 fd00::3'
`);
  assertOk(r);
  assert.match(r.stdout, /inet6 fd00::[0-9a-f:]+\/64 scope global/);
  assert.doesNotMatch(r.stdout, /tentative/);
  assert.match(r.stdout, /default via fe80::5055:aff:fe00:202 dev tap0/);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
  assert.match(r.stdout, /1 packets transmitted, 1 received/);
});
