/**
 * --outbound-addr: the NAT's host sockets, TCP and UDP alike, take the
 * source address given, or the address of the interface named. Checked by
 * servers on the sandbox's loopback that print who connected. The
 * addresses live on the sandbox's own loopback and veth pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

const SERVERS = `
node -e '
  const net = require("net"), dgram = require("dgram");
  net.createServer((c) => { console.log("tcp from " + c.remoteAddress); c.end(); })
    .listen(7100, "127.0.0.1");
  const u = dgram.createSocket("udp4");
  u.on("message", (m, r) => console.log("udp from " + r.address));
  u.bind(7101, "127.0.0.1", () => console.log("listening"));
  setTimeout(() => process.exit(0), 20000);
' > /tmp/seen.$$ &
for _ in $(seq 100); do grep -q listening /tmp/seen.$$ && break; sleep 0.05; done
`;

test('--outbound-addr=ADDR: TCP and UDP to the host come from that address', async () => {
  const r = await inSandbox(`${SERVERS}
ip addr add 198.51.100.7/32 dev lo
"$RXSLIRP" run --outbound-addr=198.51.100.7 -- bash -c '
  echo hi > /dev/tcp/10.0.2.2/7100
  echo hi > /dev/udp/10.0.2.2/7101
  sleep 0.3
'
cat /tmp/seen.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^tcp from 198\.51\.100\.7$/m);
  assert.match(r.stdout, /^udp from 198\.51\.100\.7$/m);
});

test('--outbound-addr=ADDR: the DNS forwarder asks its upstream from that address, UDP and TCP', async () => {
  const r = await inSandbox(`T="node $REPO/dist/test/integration/udp-tools.js"
ip addr add 198.51.100.1/32 dev lo
ip addr add 198.51.100.7/32 dev lo
$T dns-server 198.51.100.1 53 > /tmp/dns.$$ &
for _ in $(seq 200); do grep -q listening /tmp/dns.$$ && break; sleep 0.05; done
"$RXSLIRP" run --outbound-addr=198.51.100.7 --dns-upstream=198.51.100.1 -- sh -c '
  dig +time=2 +tries=1 @10.0.2.3 over-udp.test A +short
  dig +tcp +time=2 +tries=1 @10.0.2.3 over-tcp.test A +short
'
cat /tmp/dns.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^query over-udp\.test id=\d+ from 198\.51\.100\.7$/m);
  assert.match(r.stdout, /^query over-tcp\.test id=\d+ tcp from 198\.51\.100\.7$/m);
});

test("--outbound-addr=IFACE: TCP and UDP take the interface's address; the banner says which", async () => {
  const r = await inSandbox(`${SERVERS}
ip link add ob0 type veth peer name ob1
ip addr add 203.0.113.5/24 dev ob0
ip link set ob0 up; ip link set ob1 up
unshare --user --map-root-user --net sleep 30 &
pid=$!
for _ in $(seq 100); do [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.05; done
"$RXSLIRP" -c --outbound-addr=ob0 "$pid" tap0 > /tmp/banner.$$ &
for _ in $(seq 100); do grep -q Outbound /tmp/banner.$$ && break; sleep 0.05; done
nsenter -t "$pid" -U -n --preserve-credentials bash -c '
  echo hi > /dev/tcp/10.0.2.2/7100
  echo hi > /dev/udp/10.0.2.2/7101
'
sleep 0.3
cat /tmp/banner.$$ /tmp/seen.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^\* Outbound IPv4: {3}203\.0\.113\.5$/m);
  assert.match(r.stdout, /^tcp from 203\.0\.113\.5$/m);
  assert.match(r.stdout, /^udp from 203\.0\.113\.5$/m);
});
