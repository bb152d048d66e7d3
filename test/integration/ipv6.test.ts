/**
 * IPv6 (`-6`) against the real kernel, each test in its own private
 * namespace: the guest configures an address by SLAAC from our router
 * advertisement, pings the gateway, and reaches servers on the sandbox's
 * ::1 through [prefix::2]; `--cidr6` moves everything to another prefix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk, SHELL_HELPERS } from './harness.js';

/**
 * Waits (at most 10 s) until tap0 has a global address that is not
 * tentative. A command rxslirp runs is a new shell: the outer shell pastes
 * the function's text into it (`bash -c "$(declare -f waitslaac)"'...'`),
 * and the command gives up if the wait does.
 */
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
"$RXSLIRP" run -6 -- bash -c "${'$'}(declare -f waitslaac)"'
waitslaac || exit 1
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

/** Starts python3's http.server on [::1]:PORT over $W and waits (5 s at most) until it answers. */
const SERVE_V6 = `
W=$(mktemp -d)
head -c 5000000 /dev/urandom > "$W/blob"
sha256sum < "$W/blob" > "$W/expected"
serve() {
  python3 -m http.server "$1" --bind ::1 --directory "$W" > "$W/server.log" 2>&1 &
  for _ in $(seq 50); do curl -sg -o /dev/null "http://[::1]:$1/" && return 0; sleep 0.1; done
  cat "$W/server.log"; return 1
}
`;

test('-6: curl in the guest downloads 5 MB from a server on the host [::1] through [fd00::2]', async () => {
  const r = await inSandbox(`${SERVE_V6}${WAIT_SLAAC}
serve 8086
export W
"$RXSLIRP" run -6 -- bash -c "${'$'}(declare -f waitslaac)"'
waitslaac || exit 1
  curl -sSg --max-time 20 "http://[fd00::2]:8086/blob" | sha256sum > "$W/got"
  curl -sSg --max-time 5 -o /dev/null -w "%{http_code} %{remote_ip}\\n" "http://[fd00::2]:8086/"'
cmp "$W/expected" "$W/got" && echo same-sha256
`);
  assertOk(r);
  assert.match(r.stdout, /same-sha256/);
  assert.match(r.stdout, /200 fd00::2/);
});

test('--cidr6 2001:db8:1::/64 by PID with -c: SLAAC in the new prefix, ping, TCP; --disable-host-loopback refuses the gateway', async () => {
  const r = await inSandbox(`${SHELL_HELPERS}${SERVE_V6}${WAIT_SLAAC}
serve 8087
newns pid
mkfifo /tmp/ready.$$
"$RXSLIRP" -c -6 --cidr6=2001:db8:1::/64 -r 3 "$pid" tap0 3>/tmp/ready.$$ > /tmp/out.$$ &
slirp=$!
waitready /tmp/ready.$$
innsx "$pid" bash -c "$(declare -f waitslaac); waitslaac"
innsx "$pid" ip -6 addr show dev tap0 scope global
innsx "$pid" ping -6 -c 2 -W 2 2001:db8:1::2
innsx "$pid" curl -sSg --max-time 5 -o /dev/null -w "code=%{http_code}\\n" "http://[2001:db8:1::2]:8087/"
kill "$slirp"; wait "$slirp" || true

"$RXSLIRP" -c -6 --disable-host-loopback -r 3 "$pid" tap1 3>/tmp/ready.$$ > /dev/null &
slirp=$!
waitready /tmp/ready.$$
set +e
innsx "$pid" bash -c 'for _ in $(seq 100); do ip -6 addr show dev tap1 scope global | grep -q inet6 && break; sleep 0.1; done
  ping -6 -c 1 -W 2 fd00::2
  exec 3<>/dev/tcp/fd00::2/8087; echo "connect-exit=$?"' 2>&1
kill "$slirp" "$pid"
`);
  assertOk(r);
  assert.match(r.stdout, /inet6 2001:db8:1:[0-9a-f:]+\/64 scope global/);
  assert.match(r.stdout, /2 packets transmitted, 2 received/);
  assert.match(r.stdout, /code=200/);
  assert.match(r.stdout, /1 packets transmitted, 1 received/);
  assert.match(r.stdout, /Network is unreachable/);
  assert.match(r.stdout, /connect-exit=1/);
});

test('-6: dig asks fd00::3 (forwarded to a test server on 198.51.100.1), and a UDP echo on [::1] answers through [fd00::2]', async () => {
  const r = await inSandbox(`${WAIT_SLAAC}
T="node $REPO/dist/test/integration/udp-tools.js"
ip addr add 198.51.100.1/32 dev lo
$T dns-server 198.51.100.1 53 > /tmp/dns.$$ &
python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 7007))
print("listening", flush=True)
for _ in range(10):
    data, peer = s.recvfrom(65535)
    s.sendto(data.upper(), peer)
' > /tmp/echo.$$ &
for _ in $(seq 100); do grep -q listening /tmp/dns.$$ && grep -q listening /tmp/echo.$$ && break; sleep 0.05; done
"$RXSLIRP" run -6 --dns-upstream=198.51.100.1:53 -- bash -c "${'$'}(declare -f waitslaac)"'
waitslaac || exit 1
  dig +time=2 +tries=1 @fd00::3 www.example.test A +short
  dig +tcp +time=2 +tries=1 @fd00::3 tcp6.example.test A +short
  python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b\\"hello over ipv6\\", (\\"fd00::2\\", 7007))
print(s.recvfrom(100)[0].decode())
"'
cat /tmp/dns.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^198\.51\.100\.42\n198\.51\.100\.42$/m, 'both digs answered');
  assert.match(r.stdout, /^query www\.example\.test id=\d+ from /m);
  assert.match(r.stdout, /^query tcp6\.example\.test id=\d+ tcp from /m, 'relayed over TCP');
  assert.match(r.stdout, /^HELLO OVER IPV6$/m);
});

test('-6: ping -s 4000 to fd00::2 at MTU 1500: the request and its reply cross as fragments', async () => {
  const r = await inSandbox(
    `${WAIT_SLAAC}
"$RXSLIRP" run -6 --mtu=1500 -- bash -c "${'$'}(declare -f waitslaac)"'
waitslaac || exit 1
  ping -6 -c 2 -i 0.2 -W 2 -s 4000 fd00::2'
`,
    { env: { RXSLIRP_LOG: 'info' } },
  );
  assertOk(r);
  assert.match(r.stdout, /^4008 bytes from fd00::2: icmp_seq=1 /m);
  assert.match(r.stdout, /^4008 bytes from fd00::2: icmp_seq=2 /m);
  assert.match(r.stdout, /2 packets transmitted, 2 received/);
  assert.match(r.stderr, /\bipv6\.fragment\.reassembled=2\b/, 'both requests came in fragments');
  assert.match(r.stderr, /\bipv6\.fragment\.sent=[1-9]/, 'the replies went out in fragments');
});

test('-6 with ping sockets allowed: the guest pings 2001:db8::2 on a veth pair in the sandbox', async () => {
  const r = await inSandbox(`${WAIT_SLAAC}
ip link add v0 type veth peer name v1
ip addr add 2001:db8::1/64 dev v0 nodad
ip addr add 2001:db8::2/64 dev v1 nodad
ip link set v0 up
ip link set v1 up
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
"$RXSLIRP" run -6 -- bash -c "${'$'}(declare -f waitslaac)"'
waitslaac || exit 1
  ping -6 -c 2 -i 0.2 -W 2 2001:db8::2'
`);
  assertOk(r);
  assert.match(r.stdout, /2 packets transmitted, 2 received/);
  assert.match(r.stdout, /from 2001:db8::2: icmp_seq=1/);
});
