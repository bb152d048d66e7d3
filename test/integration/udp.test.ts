/**
 * UDP NAT against the real kernel, in a private namespace: a guest made by
 * `rxslirp run` talks to an echo server on the sandbox's 127.0.0.1 through
 * the gateway, with datagrams of 60 KiB that cross the tap as fragments
 * both ways, and sees ICMP errors as the errors a connected socket gets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

const TOOLS = 'T="node $REPO/dist/test/integration/udp-tools.js"\n';

/** Starts the echo server on the sandbox's loopback and waits until it listens. */
const ECHO_SERVER = `${TOOLS}
$T echo-server 127.0.0.1 7777 > /tmp/echo.$$ &
for _ in $(seq 200); do grep -q listening /tmp/echo.$$ && break; sleep 0.05; done
grep -q listening /tmp/echo.$$ || { echo "echo server did not start"; exit 1; }
`;

function counters(stderr: string): Map<string, number> {
  const line = /counters: (.*)/.exec(stderr)?.[1] ?? '';
  return new Map(line.split(' ').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]));
}

test('UDP echo through 10.0.2.2 to the host loopback, 60 KiB datagrams fragmented both ways', async () => {
  const r = await inSandbox(`${ECHO_SERVER}
RXSLIRP_LOG=info "$RXSLIRP" run -- sh -c "$T echo-client 10.0.2.2 7777 100 3 && $T echo-client 10.0.2.2 7777 61440 3"
`);
  assertOk(r);
  assert.match(r.stdout, /echo 3 100\n/);
  assert.match(r.stdout, /echo 3 61440\n/);
  const c = counters(r.stderr);
  assert.equal(c.get('ipv4.fragment.reassembled'), 3, 'the guest sent three datagrams in pieces');
  assert.ok((c.get('ipv4.fragment.sent') ?? 0) >= 3 * 42, 'and got three back in pieces');
  assert.equal(c.get('udp.nat.flow-opened'), 2);
});

test('a closed port on the host: the guest gets ECONNREFUSED (ICMP port unreachable)', async () => {
  const r = await inSandbox(`${TOOLS}
"$RXSLIRP" run -- $T refused 10.0.2.2 7779
`);
  assertOk(r);
  assert.match(r.stdout, /refused ECONNREFUSED/);
});

test('--disable-host-loopback: UDP to the gateway gets ICMP net unreachable, not the host', async () => {
  // Linux reports net unreachable to a UDP socket only with IP_RECVERR, so
  // the capture shows it; the echo server must not answer.
  const r = await inSandbox(`${ECHO_SERVER}
RXSLIRP_LOG=info "$RXSLIRP" run --disable-host-loopback --pcap /tmp/cap.$$.pcap -- $T send 10.0.2.2 7777
tshark -r /tmp/cap.$$.pcap 2>/dev/null
`);
  assertOk(r);
  assert.match(r.stdout, /^nothing$/m);
  assert.match(
    r.stdout,
    /10\.0\.2\.2 → 10\.0\.2\.100 +ICMP.*Destination unreachable \(Network unreachable\)/,
  );
  const c = counters(r.stderr);
  assert.equal(c.get('udp.nat.host-loopback-disabled'), 1);
  assert.equal(c.get('udp.nat.flow-opened'), undefined);
});
