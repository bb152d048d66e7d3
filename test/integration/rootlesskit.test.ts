/**
 * rootlesskit (Debian's package) driving rxslirp in slirp4netns's place, as
 * rootless container engines do: `--net=slirp4netns` with
 * `--slirp4netns-binary` pointing at rxslirp, and the slirp4netns port
 * driver, which publishes a port through our control socket. rootlesskit
 * reads our `--help` to learn the features, starts us with the flags it
 * chose, waits for the ready fd and talks JSON to the API socket: any
 * mismatch with slirp4netns's contract fails here.
 *
 * rootlesskit needs subordinate ids for the user it runs as (root here),
 * and a fresh machine may have no /etc/subuid at all: the test lays an
 * overlay on /etc inside the sandbox's private mount namespace and writes
 * its own /etc/subuid and /etc/subgid there, leaving the machine's /etc
 * alone. rootlesskit runs its child in a session of its own, out of
 * reach of the sandbox's clean-up, so the child stops its server itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { inSandbox, assertOk, REPO } from './harness.js';

const TOOLS = resolve(REPO, 'dist/test/integration/tcp-tools.js');

test('rootlesskit runs rxslirp as its slirp4netns: the tap, the gateway, and a published port carrying 3 MB', async () => {
  const r = await inSandbox(
    `
export W=$(mktemp -d /tmp/rxslirp-rk.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; umount /etc 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir "$W/etc-upper" "$W/etc-work"
mount -t overlay overlay -o lowerdir=/etc,upperdir="$W/etc-upper",workdir="$W/etc-work" /etc
echo "root:100000:65536" > /etc/subuid
echo "root:100000:65536" > /etc/subgid
head -c 3000000 /dev/urandom > "$W/blob"
sha256sum < "$W/blob" | cut -d' ' -f1 > "$W/expected"
timeout 60 rootlesskit --net=slirp4netns --slirp4netns-binary="$RXSLIRP" --disable-host-loopback \\
  --port-driver=slirp4netns -p 127.0.0.1:18080:8000/tcp \\
  sh -c 'ip -4 addr show tap0; ip route show default; ping -c 2 -W 2 10.0.2.2
    TCP_TOOLS_BIND=0.0.0.0 node "$TOOLS" http-server 8000 "$W/blob" > "$W/server.log" &
    srv=$!
    for _ in $(seq 100); do grep -q listening "$W/server.log" && break; sleep 0.05; done
    touch "$W/ready"
    rc=1
    for _ in $(seq 300); do [ -e "$W/done" ] && { rc=0; break; }; sleep 0.1; done
    kill $srv; wait $srv 2>/dev/null
    exit $rc' > "$W/rk.out" 2> "$W/rk.err" &
rk=$!
for _ in $(seq 300); do [ -e "$W/ready" ] && break; sleep 0.1; done
curl -s --max-time 20 http://127.0.0.1:18080/ | sha256sum | cut -d' ' -f1 > "$W/got" || true
touch "$W/done"
wait $rk || { echo "rootlesskit failed"; cat "$W/rk.err"; }
cat "$W/rk.out"
cmp "$W/expected" "$W/got" && echo same-sha256
`,
    { env: { TOOLS }, timeoutMs: 90_000 },
  );
  assertOk(r);
  assert.match(r.stdout, /inet 10\.0\.2\.100\/24/);
  assert.match(r.stdout, /default via 10\.0\.2\.2 dev tap0/);
  assert.match(r.stdout, /2 packets transmitted, 2 received/);
  assert.match(r.stdout, /same-sha256/);
  assert.doesNotMatch(r.stdout, /rootlesskit failed/);
});
