/**
 * The foundation against the real kernel: rxslirp attaches to namespaces
 * by PID and by path, configures the tap, answers ARP and ping for the
 * gateway and DNS addresses, writes pcap files tshark reads, and survives a
 * flood of malformed frames. Each test runs in its own private namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk, SHELL_HELPERS } from './harness.js';

test('rxslirp run: ping the gateway from a fresh namespace', async () => {
  const r = await inSandbox('"$RXSLIRP" run -- ping -c 3 -W 2 10.0.2.2');
  assertOk(r);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
});

test("rxslirp run: the DNS address answers ping too, and the exit status is the command's", async () => {
  const r = await inSandbox(`
"$RXSLIRP" run -- ping -c 1 -W 2 10.0.2.3
set +e
"$RXSLIRP" run -- sh -c 'exit 7'
echo "status=$?"
`);
  assertOk(r);
  assert.match(r.stdout, /1 packets transmitted, 1 received/);
  assert.match(r.stdout, /status=7/);
});

test('attach by PID: configured tap, MTU, MAC, default route, ready-fd; SIGTERM and SIGINT', async () => {
  const r = await inSandbox(`${SHELL_HELPERS}
newns pid
mkfifo /tmp/ready.$$ /tmp/ready2.$$
RXSLIRP_LOG=info "$RXSLIRP" -c -m 9000 --macaddress 02:42:ac:11:00:99 -r 3 "$pid" tap0 \\
  3>/tmp/ready.$$ > /tmp/out.$$ 2>/tmp/err.$$ &
slirp=$!
waitready /tmp/ready.$$
innsx "$pid" ip -4 addr show dev tap0
innsx "$pid" ip link show dev tap0
innsx "$pid" ip route
innsx "$pid" ping -c 2 -W 2 10.0.2.2
cat /tmp/out.$$
kill -TERM "$slirp"; wait "$slirp"; echo "slirp-exit=$?"
innsx "$pid" ip link show tap0 >/dev/null 2>&1 || echo "tap gone after SIGTERM"
echo "counter lines after SIGTERM: $(grep -c 'counters: ' /tmp/err.$$)"

RXSLIRP_LOG=info "$RXSLIRP" -r 3 "$pid" tap0 3>/tmp/ready2.$$ >/dev/null 2>/tmp/err2.$$ &
slirp=$!
waitready /tmp/ready2.$$
innsx "$pid" ip link show tap0 >/dev/null && echo "tap back"
kill -INT "$slirp"; wait "$slirp"; echo "slirp-int-exit=$?"
innsx "$pid" ip link show tap0 >/dev/null 2>&1 || echo "tap gone after SIGINT"
echo "counter lines after SIGINT: $(grep -c 'counters: ' /tmp/err2.$$)"
kill "$pid"
`);
  assertOk(r);
  assert.match(r.stdout, /inet 10\.0\.2\.100\/24/);
  assert.match(r.stdout, /mtu 9000/);
  assert.match(r.stdout, /link\/ether 02:42:ac:11:00:99/);
  assert.match(r.stdout, /default via 10\.0\.2\.2 dev tap0/);
  assert.match(r.stdout, /2 packets transmitted, 2 received/);
  assert.match(r.stdout, /^Starting slirp\n\* MTU: {13}9000\n\* Network: {9}10\.0\.2\.0\n/m);
  assert.match(r.stdout, /\* MAC address: {5}02:42:ac:11:00:99/);
  assert.match(r.stdout, /WARNING: 127\.0\.0\.1:\* on the host is accessible as 10\.0\.2\.2/);
  assert.match(r.stdout, /slirp-exit=0/);
  assert.match(r.stdout, /^tap gone after SIGTERM$/m);
  assert.match(r.stdout, /^counter lines after SIGTERM: 1$/m, 'the counters are logged once');
  assert.match(r.stdout, /^tap back$/m);
  assert.match(r.stdout, /slirp-int-exit=0/);
  assert.match(r.stdout, /^tap gone after SIGINT$/m);
  assert.match(r.stdout, /^counter lines after SIGINT: 1$/m);
});

test('attach by path with --userns-path and --mtu, and --cidr 10.0.135.128/25 gives 10.0.135.228', async () => {
  const r = await inSandbox(`${SHELL_HELPERS}
newns pid
mkdir -p /tmp/ns.$$
touch /tmp/ns.$$/net /tmp/ns.$$/user
mount --bind /proc/$pid/ns/net /tmp/ns.$$/net
mount --bind /proc/$pid/ns/user /tmp/ns.$$/user
mkfifo /tmp/ready.$$
"$RXSLIRP" -c --netns-type=path --userns-path=/tmp/ns.$$/user --cidr 10.0.135.128/25 \\
  --disable-host-loopback --mtu=65520 -r 3 /tmp/ns.$$/net tap9 3>/tmp/ready.$$ > /tmp/out.$$ &
slirp=$!
waitready /tmp/ready.$$
innsx "$pid" ip -4 addr show dev tap9
innsx "$pid" ip link show dev tap9
innsx "$pid" ip route
innsx "$pid" ping -c 1 -W 2 10.0.135.130
cat /tmp/out.$$
kill "$slirp" "$pid"
`);
  assertOk(r);
  assert.match(r.stdout, /inet 10\.0\.135\.228\/25/);
  assert.match(r.stdout, /tap9: .* mtu 65520 /, 'the tap has the MTU asked for');
  assert.match(r.stdout, /^\* MTU: {13}65520$/m);
  assert.match(r.stdout, /default via 10\.0\.135\.130 dev tap9/);
  assert.match(r.stdout, /1 packets transmitted, 1 received/);
  assert.match(r.stdout, /\* Netmask: {9}255\.255\.255\.128/);
  assert.doesNotMatch(r.stdout, /WARNING: 127\.0\.0\.1/);
});

test('--exit-fd: rxslirp exits 0 when the fd sees an event', async () => {
  const r = await inSandbox(`${SHELL_HELPERS}
newns pid
mkfifo /tmp/ready.$$ /tmp/exit.$$
exec 4<>/tmp/exit.$$
"$RXSLIRP" -c -r 3 -e 4 "$pid" 3>/tmp/ready.$$ >/dev/null &
slirp=$!
waitready /tmp/ready.$$
echo x >&4
wait "$slirp"; echo "slirp-exit=$?"
kill "$pid"
`);
  assertOk(r);
  assert.match(r.stdout, /slirp-exit=0/);
});

test('--pcap writes a capture that tshark reads', async () => {
  const r = await inSandbox(`
"$RXSLIRP" run --pcap /tmp/cap.$$.pcap -- ping -c 2 -W 2 10.0.2.2
tshark -r /tmp/cap.$$.pcap 2>/dev/null
`);
  assertOk(r);
  assert.match(r.stdout, /ARP.*Who has 10\.0\.2\.2/);
  assert.match(r.stdout, /10\.0\.2\.2 is at 52:55:0a:00:02:02/);
  assert.match(r.stdout, /10\.0\.2\.100 → 10\.0\.2\.2 +ICMP.*Echo \(ping\) request/);
  assert.match(r.stdout, /10\.0\.2\.2 → 10\.0\.2\.100 +ICMP.*Echo \(ping\) reply/);
});

test('a flood of malformed frames is counted and dropped while ping keeps working', async () => {
  const r = await inSandbox(
    `
RXSLIRP_LOG=info "$RXSLIRP" run -- sh -c '
  ping -c 20 -i 0.1 -W 2 10.0.2.2 > /tmp/ping.$$ &
  python3 "$REPO/test/integration/malformed-flood.py" tap0 20000 10
  wait
  cat /tmp/ping.$$
'
`,
    { timeoutMs: 90_000 },
  );
  assertOk(r);
  assert.match(r.stdout, /20 packets transmitted, 20 received/);
  const sent = Number(/flood: sent (\d+) frames/.exec(r.stdout)?.[1]);
  assert.ok(sent >= 10000, `the flood sent ${sent} frames`);
  const line = /counters: (.*)/.exec(r.stderr)?.[1] ?? '';
  const counters = new Map(line.split(' ').map((kv) => kv.split('=') as [string, string]));
  for (const reason of [
    'arp.truncated',
    'arp.bad-hardware',
    'ipv4.bad-checksum',
    'ipv4.truncated',
    'ipv4.bad-version',
    'icmpv4.bad-checksum',
    'ethernet.unhandled-type',
    'ipv4.unhandled-protocol',
  ]) {
    assert.ok(Number(counters.get(reason)) > 0, `${reason} counted: ${line}`);
  }
  let dropped = 0;
  for (const [name, value] of counters) if (!name.endsWith('.replied')) dropped += Number(value);
  // The guest's own IPv6 start-up frames (router solicitation, MLD) are
  // dropped as an unhandled EtherType too: a handful more than the flood.
  assert.ok(dropped >= sent && dropped < sent + 50, `each flood frame counted: ${line}`);
});
