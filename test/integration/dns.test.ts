/**
 * The DNS forwarder against the real kernel, in a private namespace: a
 * test DNS server (udp-tools.ts) listens on 198.51.100.1, a documentation
 * address put on the sandbox's loopback, and rxslirp is pointed at it with
 * --dns-upstream or --resolv-conf (never at the machine's resolver). The
 * guest asks 10.0.2.3 with dig and busybox nslookup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk } from './harness.js';

const DNS_SERVER = `T="node $REPO/dist/test/integration/udp-tools.js"
# startdns ADDR LOG: a test DNS server on ADDR (put on loopback), up before we go on.
startdns() {
  ip addr add "$1/32" dev lo
  $T dns-server "$1" 53 > "$2" &
  for _ in $(seq 200); do grep -q listening "$2" && return 0; sleep 0.05; done
  echo "DNS server on $1 did not start"; cat "$2"; exit 1
}
startdns 198.51.100.1 /tmp/dns.$$
`;

test('dig and nslookup in the guest get answers via 10.0.2.3 from --dns-upstream', async () => {
  const r = await inSandbox(`${DNS_SERVER}
"$RXSLIRP" run --dns-upstream=198.51.100.1:53 -- sh -c '
  dig +time=2 +tries=1 @10.0.2.3 www.example.test A +short
  dig +time=2 +tries=1 @10.0.2.3 nothing.invalid A | grep -o "status: [A-Z]*"
  busybox nslookup other.test 10.0.2.3 | grep -A1 "^Name:"
'
cat /tmp/dns.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^198\.51\.100\.42$/m);
  assert.match(r.stdout, /status: NXDOMAIN/);
  assert.match(r.stdout, /Name:\s+other\.test\nAddress:\s+198\.51\.100\.42/);
  assert.match(r.stdout, /query www\.example\.test id=\d+/, 'the test server saw the query');
});

test('DNS over TCP via 10.0.2.3 is relayed to the same upstream', async () => {
  const r = await inSandbox(`${DNS_SERVER}
"$RXSLIRP" run --dns-upstream=198.51.100.1:53 -- sh -c '
  dig +tcp +time=2 +tries=1 @10.0.2.3 tcp.example.test A +short
  dig +tcp +time=2 +tries=1 @10.0.2.3 missing.invalid A | grep -o "status: [A-Z]*"
'
cat /tmp/dns.$$
`);
  assertOk(r);
  assert.match(r.stdout, /^198\.51\.100\.42$/m);
  assert.match(r.stdout, /status: NXDOMAIN/);
  assert.match(r.stdout, /query tcp\.example\.test id=\d+ tcp/, 'the server saw it over TCP');
});

test('--resolv-conf names the upstream; editing the file moves the forwarder', async () => {
  const r = await inSandbox(`${DNS_SERVER}
startdns 198.51.100.2 /tmp/dns2.$$
printf 'nameserver 198.51.100.1\\n' > /tmp/resolv.$$
"$RXSLIRP" run --resolv-conf=/tmp/resolv.$$ -- sh -c '
  dig +time=2 +tries=1 @10.0.2.3 first.test A +short
  printf "nameserver 198.51.100.2\\n" > /tmp/resolv.'$$'
  sleep 1.2
  dig +time=2 +tries=1 @10.0.2.3 second.test A +short
'
echo "--- server 1"; cat /tmp/dns.$$
echo "--- server 2"; cat /tmp/dns2.$$
`);
  assertOk(r);
  assert.equal(r.stdout.match(/^198\.51\.100\.42$/gm)?.length, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /--- server 1\nlistening\nquery first\.test/);
  assert.match(r.stdout, /--- server 2\nlistening\nquery second\.test/);
});

test('--disable-dns: queries to 10.0.2.3 time out', async () => {
  const r = await inSandbox(`${DNS_SERVER}
set +e
"$RXSLIRP" run --disable-dns --dns-upstream=198.51.100.1 -- \\
  dig +time=1 +tries=1 @10.0.2.3 www.example.test A
echo "dig-exit=$?"
`);
  assertOk(r);
  assert.match(r.stdout, /no servers could be reached/);
  assert.match(r.stdout, /dig-exit=9/);
});
