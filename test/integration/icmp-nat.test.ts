/**
 * Ping to hosts other than the gateway, through the host's ping sockets,
 * against the real kernel. The "other host" is the far end of a veth pair
 * made inside the test's private namespace (198.51.100.1 on v0,
 * 198.51.100.2 on v1, both ends in the sandbox): no packet leaves it.
 * net.ipv4.ping_group_range is per network namespace, so each test opens or
 * closes it for its own sandbox only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

// Neighbour resolution gives up after one probe of 200 ms, so that an
// address nobody holds is reported unreachable quickly.
const VETH = `
ip link add v0 type veth peer name v1
for v in v0 v1; do
  sysctl -qw net.ipv4.neigh.$v.mcast_solicit=1 net.ipv4.neigh.$v.retrans_time_ms=200
done
ip addr add 198.51.100.1/24 dev v0
ip addr add 198.51.100.2/24 dev v1
ip link set v0 up
ip link set v1 up
`;

test('ping sockets allowed: the guest pings 198.51.100.2 with its own identifier and sequence, and hears host unreachable for 198.51.100.3', async () => {
  const r = await inSandbox(`${VETH}
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
set +e
"$RXSLIRP" run --pcap /tmp/cap.$$.pcap -- sh -c '
  ping -c 3 -i 0.2 -W 2 198.51.100.2
  ping -c 1 -W 3 198.51.100.3
  ping -c 1 -W 2 -s 4000 198.51.100.2
  true'
set -e
tshark -r /tmp/cap.$$.pcap -Y icmp -T fields -E separator=, \\
  -e ip.src -e ip.dst -e icmp.type -e icmp.ident -e icmp.seq 2>/dev/null
`);
  assertOk(r);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
  assert.match(r.stdout, /64 bytes from 198\.51\.100\.2: icmp_seq=1 ttl=63/);
  assert.match(r.stdout, /From 198\.51\.100\.[12] icmp_seq=1 Destination Host Unreachable/);
  // 4000 bytes: fragments both ways at MTU 1500.
  assert.match(r.stdout, /4008 bytes from 198\.51\.100\.2: icmp_seq=1/);

  // In the capture on the tap, every reply carries the identifier and
  // sequence of a request, and each request is answered.
  const rows = r.stdout
    .split('\n')
    .filter((l) => /^\d+\.\d+\.\d+\.\d+,/.test(l))
    .map((l) => l.split(','));
  const requests = rows.filter(([, dst, type]) => dst === '198.51.100.2' && type === '8');
  const replies = rows.filter(([src, , type]) => src === '198.51.100.2' && type === '0');
  assert.equal(requests.length, 4, r.stdout);
  assert.deepEqual(
    replies.map(([, , , ident, seq]) => `${ident}/${seq}`),
    requests.map(([, , , ident, seq]) => `${ident}/${seq}`),
  );
});

test('ping sockets forbidden: no reply from 198.51.100.2, one warning, counted, and the gateway still answers', async () => {
  const r = await inSandbox(
    `${VETH}
sysctl -qw net.ipv4.ping_group_range="1 0"
"$RXSLIRP" run -- sh -c '
  ping -c 2 -i 0.2 -W 1 198.51.100.2
  ping -c 2 -i 0.2 -W 2 10.0.2.2'
`,
    { env: { RXSLIRP_LOG: 'info' } },
  );
  assertOk(r);
  // Each summary under its own ping's header, so the two cannot be swapped.
  const summary = (host: string, received: number): RegExp =>
    new RegExp(
      `^--- ${host.replaceAll('.', '\\.')} ping statistics ---\\n2 packets transmitted, ${received} received,`,
      'm',
    );
  assert.match(r.stdout, summary('198.51.100.2', 0));
  assert.match(r.stdout, summary('10.0.2.2', 2));
  const warnings = r.stderr.split('\n').filter((l) => /warn.*ping_group_range/.test(l));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0]!, /sysctl -w net\.ipv4\.ping_group_range=/);
  assert.match(r.stderr, /counters: .*icmp\.echo\.no-ping-socket=2\b/);
});

test('a TTL-limited probe hears TTL exceeded from the router on the way, and the far host answers', async () => {
  // sandbox (198.51.100.1) -- v0/v1 -- namespace rt, forwarding (198.51.100.2,
  // 203.0.113.1) -- r0/r1 -- namespace far (203.0.113.2). All three are
  // private to the test.
  // The two extra namespaces belong to sleeping processes of the sandbox's
  // process group, which the harness kills at the end (no /run/netns files).
  const r = await inSandbox(`
netns() {
  unshare --net sleep 60 &
  local p=$!
  for _ in $(seq 100); do
    [ "$(readlink /proc/$p/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.02
  done
  eval "$1=$p"
}
inns() { local p=$1; shift; nsenter --target "$p" --net -- "$@"; }
netns rt
netns far
ip link add v0 type veth peer name v1
ip link add r0 type veth peer name r1
ip link set v1 netns "$rt"
ip link set r0 netns "$rt"
ip link set r1 netns "$far"
ip addr add 198.51.100.1/24 dev v0
ip link set v0 up
ip route add 203.0.113.0/24 via 198.51.100.2
inns "$rt" ip addr add 198.51.100.2/24 dev v1
inns "$rt" ip addr add 203.0.113.1/24 dev r0
inns "$rt" ip link set v1 up
inns "$rt" ip link set r0 up
inns "$rt" sysctl -qw net.ipv4.ip_forward=1
inns "$far" ip addr add 203.0.113.2/24 dev r1
inns "$far" ip link set r1 up
inns "$far" ip route add default via 203.0.113.1
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
set +e
"$RXSLIRP" run -- sh -c '
  ping -c 1 -W 2 -t 1 203.0.113.2
  ping -c 1 -W 2 -t 2 203.0.113.2
  ping -c 1 -W 2 203.0.113.2
  true'
`);
  assertOk(r);
  assert.match(r.stdout, /From 10\.0\.2\.2 icmp_seq=1 Time to live exceeded/);
  assert.match(r.stdout, /From 198\.51\.100\.2 icmp_seq=1 Time to live exceeded/);
  assert.match(r.stdout, /64 bytes from 203\.0\.113\.2: icmp_seq=1 ttl=62/);
});
