/**
 * The DHCP server against a real client, in a private namespace: rxslirp
 * attaches by PID without -c to a namespace whose tap has no address, and
 * `busybox udhcpc` there gets network+15 and the options, printed by its
 * script.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSandbox, assertOk, SHELL_HELPERS } from './harness.js';

function udhcpcRun(flags: string): string {
  return `${SHELL_HELPERS}
newns pid
mkfifo /tmp/ready.$$
"$RXSLIRP" ${flags} -r 3 "$pid" tap0 3>/tmp/ready.$$ >/dev/null &
slirp=$!
waitready /tmp/ready.$$
cat > /tmp/udhcpc.$$ <<'SCRIPT'
#!/bin/sh
echo "udhcpc $1 ip=$ip subnet=$subnet router=$router dns=$dns lease=$lease mtu=$mtu serverid=$serverid"
SCRIPT
chmod +x /tmp/udhcpc.$$
innsx "$pid" ip link set tap0 up
innsx "$pid" busybox udhcpc -i tap0 -n -q -O mtu -t 3 -T 1 -s /tmp/udhcpc.$$
kill "$slirp" "$pid"
`;
}

test('busybox udhcpc in an unconfigured namespace gets 10.0.2.15 and the options', async () => {
  const r = await inSandbox(udhcpcRun('--mtu=9000'));
  assertOk(r);
  assert.match(
    r.stdout,
    /udhcpc bound ip=10\.0\.2\.15 subnet=255\.255\.255\.0 router=10\.0\.2\.2 dns=10\.0\.2\.3 lease=86400 mtu=9000 serverid=10\.0\.2\.2/,
  );
});

test('--disable-dns: the lease carries no DNS server; --cidr moves the range', async () => {
  const r = await inSandbox(udhcpcRun('--disable-dns --cidr=10.0.135.0/24'));
  assertOk(r);
  assert.match(
    r.stdout,
    /udhcpc bound ip=10\.0\.135\.15 subnet=255\.255\.255\.0 router=10\.0\.135\.2 dns= lease=86400 mtu=1500/,
  );
});
